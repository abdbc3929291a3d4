// The element's markup and the small renderers that fill it. Text only (textContent), never HTML from data.

export const STAGE_LABELS = { runtime: 'Python runtime', packages: 'De-identifier', codecs: 'Image decoders', ocr: 'Text recognition (OCR)' };

const STATUS_TEXT = {
  queued: 'Waiting', reading: 'Reading', deidentifying: 'De-identifying', deidentified: 'De-identified (not uploaded)',
  'awaiting-review': 'Awaiting review', uploading: 'Uploading', uploaded: 'Uploaded',
  'already-uploaded': 'Already uploaded', skipped: 'Skipped', failed: 'Failed',
};

export const TEMPLATE = (styles) => `
<link rel="stylesheet" href="${styles}">
<section part="panel" class="panel" aria-labelledby="title">
  <header>
    <h1 id="title" part="title">De-identify and upload DICOM</h1>
    <p class="lead">Files are de-identified in this browser. Only de-identified copies leave this computer;
      your files are never changed.</p>
    <ul part="stages" class="stages" aria-label="Start-up" aria-live="polite">
      ${Object.entries(STAGE_LABELS).map(([k, v]) => `<li data-stage="${k}" data-state="start">${v}: <span class="state">loading…</span></li>`).join('')}
    </ul>
  </header>
  <p part="key-notice" class="notice" hidden>No pseudonym key was configured: a random key for this browser tab is
    used. Uploads from another tab or computer will not share pseudonyms with these.</p>
  <form part="token-form" class="token" hidden>
    <label for="token">Upload token</label>
    <input id="token" type="password" autocomplete="off" spellcheck="false" required>
    <button type="submit">Use token</button>
  </form>
  <div part="dropzone" class="drop" role="region" aria-label="Drop zone" aria-describedby="drop-help">
    <p class="hint"><strong>Drop DICOM files or folders here</strong></p>
    <p id="drop-help" class="help">or choose them below (keyboard: Tab to a button, then Enter). A CD's folder can
      be dropped whole: index files, viewers and other non-DICOM files are listed as skipped.</p>
    <div class="pickers">
      <label class="button">Choose files…<input id="files" class="visually-hidden" type="file" multiple></label>
      <label class="button">Choose a folder…<input id="folder" class="visually-hidden" type="file" webkitdirectory multiple></label>
    </div>
  </div>
  <p part="error" class="error" role="alert" hidden></p>
  <div class="progress">
    <progress part="progress" max="1" value="0" aria-label="Files processed"></progress>
    <p part="counts" class="counts" aria-live="polite">No files yet.</p>
  </div>
  <section part="review" class="review" hidden aria-labelledby="review-title">
    <h2 id="review-title">Review required before upload</h2>
    <p><span id="review-count">0</span> de-identified instance(s) wait for a qualified reviewer's sign-off.</p>
    <form>
      <label for="reviewer">Reviewer</label> <input id="reviewer" required autocomplete="name">
      <label for="role">Role</label> <input id="role" required>
      <button type="submit">Sign off and upload</button>
    </form>
  </section>
  <section part="summary" class="summary" hidden aria-live="polite" aria-labelledby="summary-title"></section>
  <table part="table">
    <caption class="visually-hidden">Files and their status (names are shown only on this computer)</caption>
    <thead><tr><th scope="col">#</th><th scope="col">File</th><th scope="col">Status</th><th scope="col">Details</th></tr></thead>
    <tbody></tbody>
  </table>
</section>`;

export function renderRow(tr, row) {
  if (!tr.children.length) {
    for (let i = 0; i < 4; i += 1) tr.append(document.createElement('td'));
    tr.children[0].textContent = String(row.index + 1);
    tr.children[1].textContent = row.path;
    tr.children[1].className = 'name';
  }
  tr.dataset.status = row.status;
  tr.children[2].textContent = STATUS_TEXT[row.status] || row.status;
  let details = row.message || '';
  if (!details && row.modality) details = `${row.modality}${row.pixels?.cleaned ? ', burned-in text masked' : ''}`;
  tr.children[3].textContent = details;
}

export function renderSummary(section, s) {
  const c = s.counts;
  section.replaceChildren();
  const h = document.createElement('h2');
  h.id = 'summary-title';
  h.textContent = 'Summary';
  const p = document.createElement('p');
  const sent = c.uploaded + c.alreadyUploaded;
  p.textContent = `${c.total} files: ${sent} uploaded${c.alreadyUploaded ? ` (${c.alreadyUploaded} had been already)` : ''}`
    + `${c.deidentified ? `, ${c.deidentified} de-identified but not uploaded` : ''}, ${c.skipped} skipped, ${c.failed} failed`
    + ` in ${s.seconds.toFixed(1)} s.`;
  section.append(h, p);
  for (const [title, reasons] of [['Skipped', s.skipped], ['Failed', s.failed]]) {
    const entries = Object.entries(reasons);
    if (!entries.length) continue;
    const h3 = document.createElement('h3');
    h3.textContent = `${title} and why`;
    const ul = document.createElement('ul');
    for (const [reason, n] of entries) {
      const li = document.createElement('li');
      li.textContent = `${n} × ${reason}`;
      ul.append(li);
    }
    section.append(h3, ul);
  }
}
