"""Listing and fetching what arrived (QIDO-RS/WADO-RS subset), with dicomweb-client used unchanged."""

from __future__ import annotations

import io

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient

from py_deid import stow

from . import receiver_support as rs
from .conftest import SITE1


@pytest.fixture(scope="module")
def stored(server, instances):
    """One study with two series (CT, MR) of de-identified real instances, stored once for this module."""
    ct = instances.deid("CT_small.dcm")
    study = rs.uids(ct)[0]
    parts = [rs.with_new_uids(ct, 100 + i) for i in range(3)]
    parts.append(rs.with_new_uids(instances.deid("MR_small_RLE.dcm"), 1, study=study))
    with server.client(SITE1) as c:
        ctype, body = stow.encode(parts)
        assert c.post("/dicomweb/studies", content=body, headers={"Content-Type": ctype}).status_code == 200
    return study, parts


def dwc(server, token=SITE1) -> DICOMwebClient:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
    session.verify = server.ca
    session.headers["Authorization"] = f"Bearer {token}"
    return DICOMwebClient(server.base, session=session)


def test_dicomweb_client_store_search_retrieve(server, instances):
    client = dwc(server)
    ds = pydicom.dcmread(io.BytesIO(rs.with_new_uids(instances.deid("JPEG2000.dcm"), 7)))
    response = client.store_instances([ds])
    assert [i.ReferencedSOPInstanceUID for i in response.ReferencedSOPSequence] == [ds.SOPInstanceUID]
    assert response.RetrieveURL == f"{server.base}/studies/{ds.StudyInstanceUID}"
    studies = client.search_for_studies(search_filters={"StudyInstanceUID": ds.StudyInstanceUID})
    assert [s["0020000D"]["Value"][0] for s in studies] == [ds.StudyInstanceUID]
    got = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert got.SOPInstanceUID == ds.SOPInstanceUID and got.PixelData == ds.PixelData
    series = client.search_for_series(ds.StudyInstanceUID)
    assert [s["0020000E"]["Value"][0] for s in series] == [ds.SeriesInstanceUID]
    found = client.search_for_instances(ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert [i["00080018"]["Value"][0] for i in found] == [ds.SOPInstanceUID]


def test_dicomweb_client_sees_a_refusal_as_an_http_error(server, instances):
    raw = pydicom.dcmread(io.BytesIO(instances.raw("CT_small.dcm")))
    with pytest.raises(requests.HTTPError) as e:
        dwc(server).store_instances([raw])
    assert e.value.response.status_code == 409


def test_search_levels_and_paging(server, client, stored):
    study, parts = stored
    r = client.get("/dicomweb/studies", params={"StudyInstanceUID": study})
    (doc,) = rs.dicom_json(r)
    assert doc["00201206"]["Value"] == [2] and doc["00201208"]["Value"] == [4]
    assert sorted(doc["00080061"]["Value"]) == ["CT", "MR"]
    series = rs.dicom_json(client.get(f"/dicomweb/studies/{study}/series"))
    assert sorted(s["00080060"]["Value"][0] for s in series) == ["CT", "MR"]
    all_instances = rs.dicom_json(client.get(f"/dicomweb/studies/{study}/instances"))
    assert {i["00080018"]["Value"][0] for i in all_instances} == {rs.uids(p)[2] for p in parts}
    page = rs.dicom_json(client.get(f"/dicomweb/studies/{study}/instances", params={"limit": 2, "offset": 1}))
    assert [i["00080018"]["Value"][0] for i in page] == [i["00080018"]["Value"][0] for i in all_instances[1:3]]
    assert client.get("/dicomweb/studies", params={"StudyInstanceUID": "1.2.3.999"}).status_code == 204
    assert client.get("/dicomweb/studies", params={"limit": "x"}).status_code == 400


def test_retrieve_multipart_and_single(server, client, stored):
    study, parts = stored
    part = parts[0]
    _, series, sop = rs.uids(part)
    url = f"/dicomweb/studies/{study}/series/{series}/instances/{sop}"
    r = client.get(url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/related")
    boundary = stow.parse_content_type(r.headers["content-type"])[1]["boundary"]
    ((headers, content),) = rs.split_multipart(r.content, boundary)
    assert content == part and "transfer-syntax=1.2.840.10008.1.2.1" in headers["content-type"]
    single = client.get(url, headers={"Accept": "application/dicom; transfer-syntax=*"})
    assert single.status_code == 200 and single.content == part
    assert single.headers["content-type"].startswith("application/dicom")
    # Explicit VR Little Endian is the default transfer syntax, and the one this instance is stored in
    assert client.get(url, headers={"Accept": "application/dicom"}).content == part
    whole_series = client.get(f"/dicomweb/studies/{study}/series/{series}")
    b = stow.parse_content_type(whole_series.headers["content-type"])[1]["boundary"]
    assert {c for _, c in rs.split_multipart(whole_series.content, b)} == set(parts[:3])
    whole_study = client.get(f"/dicomweb/studies/{study}")
    b = stow.parse_content_type(whole_study.headers["content-type"])[1]["boundary"]
    assert len(rs.split_multipart(whole_study.content, b)) == 4


def test_retrieve_refusals(server, client, stored, instances):
    study, parts = stored
    mr = parts[3]  # stored in RLE Lossless: not what a client asking for the default gets
    _, series, sop = rs.uids(mr)
    url = f"/dicomweb/studies/{study}/series/{series}/instances/{sop}"
    assert client.get(url, headers={"Accept": "application/dicom"}).status_code == 406
    assert client.get(url, headers={"Accept": "image/jpeg"}).status_code == 406
    assert client.get(url, headers={"Accept": "application/dicom; transfer-syntax=1.2.840.10008.1.2.5"}).content == mr
    assert client.get(f"/dicomweb/studies/{study}/series/{series}/instances/1.2.3.4").status_code == 404
    assert client.get("/dicomweb/studies/..%2F..%2Fetc/series").status_code in (400, 404)
    assert client.get("/dicomweb/studies/1.2.x/series").status_code == 400
    assert client.get("/dicomweb/nothing/here").status_code == 404
    with server.client() as anonymous:
        assert anonymous.get(url).status_code == 401
