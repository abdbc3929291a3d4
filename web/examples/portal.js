// The portal's glue: configure the uploader from the trial settings and the visit form, give it short-lived upload
// tokens and the trial's pseudonym key from the portal's own server, and follow its events. Only documented API:
// docs/embedding.md.
const uploader = document.getElementById('uploader');
const form = document.getElementById('visit-form');
const status = document.getElementById('upload-status');
const submit = document.getElementById('submit-visit');
const settings = JSON.parse(document.getElementById('trial-settings').textContent);

// What the portal saw, for its own audit trail (and for the example's tests): type and detail of each event.
window.SponsorPortal = { events: [], tokenRequests: 0 };

async function portalApi(path) {
  const response = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (!response.ok) throw new Error(`portal API ${path}: ${response.status}`);
  return response.json();
}

function visitSettings() {
  return {
    ...settings,
    subjectId: form.elements.subject.value,
    timePointId: form.elements.timePoint.value,
    timePointDescription: form.elements.timePoint.selectedOptions[0].textContent,
    // Called before each upload request and again after a 401: the portal's server mints short-lived tokens.
    tokenProvider: async ({ reason }) => {
      window.SponsorPortal.tokenRequests += 1;
      return (await portalApi(`/portal-api/upload-token?reason=${encodeURIComponent(reason)}`)).token;
    },
    // The trial's key for keyed pseudonyms: the same subject gets the same pseudonyms at every visit.
    pseudonymKeyProvider: async () => (await portalApi('/portal-api/pseudonym-key')).key,
  };
}

uploader.config = visitSettings();
form.elements.subject.addEventListener('change', () => { uploader.config = visitSettings(); });
form.elements.timePoint.addEventListener('change', () => { uploader.config = visitSettings(); });

for (const type of ['deid-progress', 'deid-file', 'deid-review-required', 'deid-uploaded', 'deid-error', 'deid-complete']) {
  uploader.addEventListener(type, (event) => window.SponsorPortal.events.push({ type, detail: structuredClone(event.detail) }));
}
uploader.addEventListener('deid-progress', ({ detail }) => {
  if (detail.phase !== 'run') return;
  const c = detail.counts;
  status.textContent = `${c.processed} of ${c.total} images processed, ${c.uploaded + c.alreadyUploaded} sent.`;
});
uploader.addEventListener('deid-error', ({ detail }) => {
  status.textContent = `The uploader reported a problem (${detail.code}): ${detail.message}`;
});
uploader.addEventListener('deid-complete', ({ detail }) => {
  const c = detail.counts;
  status.textContent = `${c.uploaded + c.alreadyUploaded} images sent, ${c.skipped} skipped, ${c.failed} failed.`;
  submit.disabled = c.uploaded + c.alreadyUploaded === 0 || c.failed > 0;
});

document.getElementById('start-over').addEventListener('click', () => {
  uploader.reset();
  submit.disabled = true;
  status.textContent = 'No images yet.';
});

form.addEventListener('submit', (event) => {
  event.preventDefault();  // the example has no visit backend
  window.SponsorPortal.submitted = true;
  status.textContent = 'Visit submitted.';
});
