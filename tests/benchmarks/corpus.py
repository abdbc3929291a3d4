"""A generated corpus built from real sample files: several patients, studies and series, mixed transfer
syntaxes, PHI planted in standard, nested and private attributes (each planted value is a unique token)."""

from __future__ import annotations

import copy
import re
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

BASES = ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm",
         "rtplan.dcm", "CTImageStorage.dcm", "693_J2KI.dcm", "SC_rgb.dcm", "0051.dcm"]


# More identifying attributes, each with its own planted value: (keyword, VR-fitting value format).
MORE = {"InstitutionName": "PLINST{:04d} HOSPITAL", "InstitutionAddress": "PLADDR{:04d} MAIN ST",
        "StationName": "PLSTAT{:04d}", "OperatorsName": "PLOPER{:04d}^TOM", "PerformingPhysicianName": "PLPERF{:04d}^AL",
        "PhysiciansOfRecord": "PLRECO{:04d}^BO", "InstitutionalDepartmentName": "PLDEPT{:04d} RADIOLOGY",
        "StudyDescription": "KNEE PLSTDY{:04d}", "OtherPatientNames": "PLOTHR{:04d}^EVA",
        "PatientAddress": "PLPADR{:04d} ELM ST", "PatientTelephoneNumbers": "PLTELE{:04d}",
        "PatientMotherBirthName": "PLMOTH{:04d}^ROSE", "Occupation": "PLOCCU{:04d}",
        "AdditionalPatientHistory": "PLHIST{:04d} FELL", "PatientComments": "PLCOMM{:04d} CALLS",
        "ImageComments": "PLIMGC{:04d} NOTE", "RequestingPhysician": "PLREQU{:04d}^JO",
        "DeviceSerialNumber": "PLSERI{:04d}", "PerformedProcedureStepDescription": "PLPPSD{:04d} KNEE"}


def planted_tokens(patient: int) -> list[bytes]:
    return [f"PLANTEDNAME{patient:04d}".encode(), f"PLNTID{patient:05d}".encode(), f"PLANTEDREF{patient:04d}".encode(),
            f"PLANTEDPRIV{patient:04d}".encode(), f"PLANTEDNEST{patient:04d}".encode()] + \
        [re.search(r"PL[A-Z]{4}\d{4}", fmt.format(patient)).group().encode() for fmt in MORE.values()]


def build(samples, out: Path, n: int, *, patients: int = 20) -> tuple[list[Path], list[bytes]]:
    bases = [pydicom.dcmread(samples.path(name)) for name in BASES]
    paths, tokens = [], []
    for p in range(patients):
        tokens += planted_tokens(p)
    for i in range(n):
        patient, study, series = i % patients, (i // patients) % 3, (i // (patients * 3)) % 4
        ds = copy.deepcopy(bases[i % len(bases)])
        ds.PatientName = f"PLANTEDNAME{patient:04d}^ANNA"
        ds.PatientID = f"PLNTID{patient:05d}"
        ds.PatientBirthDate = "19510829"
        ds.ReferringPhysicianName = f"PLANTEDREF{patient:04d}^DR"
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.{patient}.{study}"
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.{patient}.{study}.{series}"
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{patient}.{study}.{series}.{i}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.AccessionNumber = f"PLNTID{patient:05d}"
        item = Dataset()
        item.RequestedProcedureDescription = f"knee PLANTEDNEST{patient:04d}"
        item.ScheduledProcedureStepID = f"PLNTID{patient:05d}"
        ds.RequestAttributesSequence = Sequence([item])
        ds.add(DataElement(0x00710010, "LO", "ACME PRIVATE"))
        ds.add(DataElement(0x00711001, "LO", f"PLANTEDPRIV{patient:04d}"))
        for keyword, fmt in MORE.items():
            setattr(ds, keyword, fmt.format(patient))
        path = out / f"{i:05d}.dcm"
        buf = BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths, tokens
