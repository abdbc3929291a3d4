// The element's markup and the small renderers that fill it. No text in the markup: every string comes from the
// translator (i18n/) through textContent, never HTML, so neither data nor a portal's string override can inject markup.

export const STAGES = ['runtime', 'packages', 'codecs', 'ocr'];

export const TEMPLATE = (styles) => `
<link rel="stylesheet" href="${styles.replace(/"/g, "%22")}">
<section part="panel" class="panel" aria-labelledby="title" hidden>
  <header>
    <h1 id="title" part="title" data-t="title"></h1>
    <p class="lead" data-t="lead"></p>
    <ul part="stages" class="stages" data-t-aria="stages.label" aria-live="polite">
      ${STAGES.map((k) => `<li data-stage="${k}" data-state="start"><span data-t="stage.${k}"></span>: <span class="state" data-t="stageState.start"></span></li>`).join('')}
    </ul>
  </header>
  <p part="error" class="error" role="alert" hidden></p>
  <p part="key-notice" class="notice" data-t="keyNotice" hidden></p>
  <section part="site-key" class="site-key" hidden aria-labelledby="site-key-title">
    <h2 id="site-key-title" class="visually-hidden" data-t="siteKey.title"></h2>
    <p data-t="siteKey.text"></p>
    <details>
      <summary data-t="siteKey.manage"></summary>
      <form id="key-export" class="key-form">
        <label for="export-pass" data-t="siteKey.newPassphrase"></label>
        <input id="export-pass" part="input" type="password" autocomplete="new-password" minlength="10" required>
        <button type="submit" part="button" data-t="siteKey.export"></button>
      </form>
      <form id="key-import" class="key-form">
        <label for="import-file" data-t="siteKey.file"></label>
        <input id="import-file" type="file" accept=".json,application/json" required>
        <label for="import-pass" data-t="siteKey.passphrase"></label>
        <input id="import-pass" part="input" type="password" autocomplete="off" required>
        <button type="submit" part="button" data-t="siteKey.import"></button>
      </form>
      <p id="key-status" role="status"></p>
    </details>
  </section>
  <p part="local-notice" class="notice" data-t="localOnly" hidden></p>
  <form part="token-form" class="token" hidden>
    <label for="token" data-t="token.label"></label>
    <input id="token" part="input" type="password" autocomplete="off" spellcheck="false" required aria-describedby="token-help">
    <button type="submit" part="button" data-t="token.submit"></button>
    <p id="token-help" class="help" data-t="token.help"></p>
  </form>
  <div part="dropzone" class="drop" tabindex="-1" role="region" data-t-aria="drop.label" aria-describedby="drop-help">
    <p class="hint"><strong data-t="drop.hint"></strong></p>
    <p id="drop-help" class="help" data-t="drop.help"></p>
    <div class="pickers">
      <label class="button" part="button picker"><span data-t="pick.files"></span><input id="files" class="visually-hidden" type="file" multiple></label>
      <label class="button" part="button picker"><span data-t="pick.folder"></span><input id="folder" class="visually-hidden" type="file" webkitdirectory multiple></label>
    </div>
  </div>
  <div class="progress">
    <progress part="progress" max="1" value="0" data-t-aria="progress.label"></progress>
    <p part="counts" class="counts" tabindex="-1" aria-live="polite" data-t="counts.none"></p>
  </div>
  <section part="review-screen" class="review-screen" hidden></section>
  <section part="review" class="review" hidden aria-labelledby="review-title">
    <h2 id="review-title" data-t="review.title"></h2>
    <p id="review-text"></p>
    <span id="review-count" hidden>0</span>
    <form>
      <label for="reviewer" data-t="review.reviewer"></label> <input id="reviewer" part="input" required autocomplete="name">
      <label for="role" data-t="review.role"></label> <input id="role" part="input" required>
      <button type="submit" part="button" data-t="review.submit"></button>
    </form>
  </section>
  <section part="summary" class="summary" hidden aria-live="polite" aria-labelledby="summary-title"></section>
  <table part="table">
    <caption class="visually-hidden" data-t="table.caption"></caption>
    <thead><tr><th scope="col" data-t="col.index"></th><th scope="col" data-t="col.file"></th><th scope="col" data-t="col.status"></th><th scope="col" data-t="col.details"></th></tr></thead>
    <tbody></tbody>
  </table>
</section>`;

/** Fill every [data-t] (text) and [data-t-aria] (aria-label) under root. */
export function localize(root, t) {
  for (const el of root.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  for (const el of root.querySelectorAll('[data-t-aria]')) el.setAttribute('aria-label', t(el.dataset.tAria));
}

export function setStage(root, t, stage, state) {
  const chip = root.querySelector(`[data-stage="${stage}"]`);
  if (!chip) return;
  chip.dataset.state = state;
  const label = chip.querySelector('.state');
  label.dataset.t = `stageState.${state}`;
  label.textContent = t(label.dataset.t);
}

/** One file's row. `waiting`: what the run's uploads wait for ('token', 'network' or ''; upload.js), which an
 * 'uploading' row says instead (the file's status and its deid-file events stay 'uploading'). */
export function renderRow(tr, row, t, { waiting = '' } = {}) {
  if (!tr.children.length) {
    for (let i = 0; i < 4; i += 1) tr.append(document.createElement('td'));
    tr.children[0].textContent = String(row.index + 1);
    tr.children[1].textContent = row.path;
    tr.children[1].className = 'name';
  }
  if (!tr.children[2].dataset.label) {  // the column names, shown in the card layout of narrow screens
    tr.children[2].dataset.label = t('col.status');
    tr.children[3].dataset.label = t('col.details');
  }
  tr.dataset.status = row.status;
  const waits = row.status === 'uploading' && waiting ? waiting : '';
  if (waits) tr.dataset.waiting = waits; else delete tr.dataset.waiting;
  tr.children[2].textContent = t(waits ? `status.waiting-for-${waits}` : `status.${row.status}`);
  let details = row.message || '';
  if (!details && row.modality) details = `${row.modality}: ${pixelLabel(row.pixels, t)}`;
  else if (!details && row.status === 'deidentifying') {
    details = row.frames ? t('details.frames', { frame: row.frame, frames: row.frames, mb: mb(row.size) })
      : t('details.reading', { mb: mb(row.size) });
  }
  tr.children[3].textContent = details;
}

const mb = (bytes) => (bytes / 1e6).toFixed(1);
const UNCHECKED = new Set(['pixels-off', 'no-pixel-data']);

/** What happened to the pixels, in words a site coordinator can check against the review screen. */
export function pixelLabel(px, t) {
  if (!px) return t('pixels.noImage');
  const masked = Object.values(px.boxes || {}).filter((b) => b.length).length;
  const overlays = Object.values(px.overlay_boxes || {}).filter((b) => (Array.isArray(b) ? b.length : b)).length;
  const frames = px.counts?.frames || 0;
  if (masked) return t('pixels.masked', { count: masked, frames });
  if (overlays) return t('pixels.overlays');
  // Screened frame by frame and nothing like text found: checked, with no OCR needed.
  if (px.cleaned || px.reason === 'no-text-found') return t('pixels.clean', { count: frames });
  const why = UNCHECKED.has(px.reason) ? t(`pixels.why.${px.reason}`) : px.reason || '';
  return t('pixels.unchecked', { why });
}

export function countsText(d, t) {
  const c = d.counts;
  const parts = [t('counts.files', c)];
  if (d.totalBytes) parts.push(t('counts.bytes', { read: mb(d.inputBytes || 0), total: mb(d.totalBytes) }));
  parts.push(t('counts.uploaded', { n: c.uploaded + c.alreadyUploaded }), t('counts.skipped', { n: c.skipped }),
    t('counts.failed', { n: c.failed }));
  if (c.excluded) parts.push(t('counts.excluded', { n: c.excluded }));
  if (c.awaitingReview) parts.push(t('counts.awaiting', { n: c.awaitingReview }));
  if (d.totalBytes) parts.push(t('counts.speed', { files: d.filesPerSecond.toFixed(1), mb: (d.bytesPerSecond / 1e6).toFixed(1) }));
  return parts.join(' · ');
}

export function renderSummary(section, s, t) {
  const c = s.counts;
  section.replaceChildren();
  const h = document.createElement('h2');
  h.id = 'summary-title';
  h.textContent = t('summary.title');
  const p = document.createElement('p');
  const sent = c.uploaded + c.alreadyUploaded;
  p.textContent = t('summary.files', { count: c.total, total: c.total, sent })
    + (c.alreadyUploaded ? t('summary.already', { n: c.alreadyUploaded }) : '')
    + (c.deidentified ? t('summary.local', { n: c.deidentified }) : '')
    + (c.excluded ? t('summary.excluded', { n: c.excluded }) : '')
    + (c.awaitingReview ? t('summary.awaiting', { n: c.awaitingReview }) : '')
    + t('summary.rest', { skipped: c.skipped, failed: c.failed, seconds: s.seconds.toFixed(1) })
    + (s.reviewSeconds >= 0.1 ? t('summary.review', { seconds: s.reviewSeconds.toFixed(1) }) : '');
  section.append(h, p);
  for (const [key, reasons] of [['summary.skipped', s.skipped], ['summary.failed', s.failed], ['summary.excludedWhy', s.excluded]]) {
    const entries = Object.entries(reasons || {});
    if (!entries.length) continue;
    const h3 = document.createElement('h3');
    h3.textContent = t(key);
    const ul = document.createElement('ul');
    for (const [reason, n] of entries) {
      const li = document.createElement('li');
      li.textContent = `${n} × ${reason}`;
      ul.append(li);
    }
    section.append(h3, ul);
  }
}
