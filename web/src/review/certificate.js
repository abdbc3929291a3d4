// The batch's certificate: built by the core in a worker (py_deid.certificate, from PHI-free records), stored with
// each of its studies at the endpoint (POST {base}/studies/{study}/certificates), offered for download.
import { ACTIONS, NamedError } from '../protocol.js';

// What the reviewer attests when the sponsor sets no `attestation`: the very text py_deid.certificate records
// (DEFAULT_ATTESTATION; a test checks they agree), so it is shown untranslated: the screen shows what is certified.
export const DEFAULT_ATTESTATION = 'I have reviewed the de-identified images and headers listed in this certificate and '
  + 'determined that they contain no information that identifies the patient.';
const ATTEMPTS = 5;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function buildCertificate(pool, request) {
  return pool.call(ACTIONS.CERTIFICATE, { request });
}

async function bearer(uploader, reason) {
  if (!uploader.tokenProvider) return uploader.token;
  const token = await Promise.race([Promise.resolve().then(() => uploader.tokenProvider({ reason })),
    sleep(30000).then(() => { throw new NamedError('TokenError', 'the token provider did not answer in time'); })]);
  if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
    throw new NamedError('TokenError', 'the token provider did not return a token (printable text)');
  }
  return token;
}

/** POST each study's part; retried on network errors and 5xx. Returns [{study, url, check}]. */
export async function storeCertificate(uploader, parts) {
  const base = uploader.url;  // {endpoint}/studies
  const stored = [];
  for (const { study, json } of parts) {
    let reason = 'certificate';
    for (let attempt = 1; ; attempt += 1) {
      let response = null;
      try {
        response = await fetch(`${base}/${encodeURIComponent(study)}/certificates`, {
          method: 'POST', body: json, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json',
            Authorization: `Bearer ${await bearer(uploader, reason)}` },
        });
      } catch (err) {
        if (err?.name === 'TokenError') throw err;
      }
      if (response && (response.status === 200 || response.status === 201)) {
        const body = await response.json();
        stored.push({ study, url: body.url, check: body.check });
        break;
      }
      if (response?.status === 401 && uploader.tokenProvider && reason !== 'unauthorized') { reason = 'unauthorized'; continue; }
      const retry = !response || response.status >= 500 || response.status === 429;
      if (!retry || attempt >= ATTEMPTS) {
        throw new NamedError('CertificateError', response
          ? `the endpoint refused the certificate (HTTP ${response.status})` : 'the endpoint could not be reached');
      }
      await sleep(500 * 2 ** (attempt - 1));
    }
  }
  return stored;
}

/** A download link (JSON or printable HTML) for a certificate text: a local blob, nothing is fetched. */
export function downloadLink(text, type, filename, label) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = filename;
  a.textContent = label;
  a.className = 'button';
  a.setAttribute('part', 'review-button');
  return a;
}
