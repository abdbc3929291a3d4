// The review screen, mounted in the element's [part=review-screen] when a batch waits for review: studies and
// series as the site knows them, thumbnails of the de-identified images with their masks, the viewer of one
// image, and after sign-off the certificate. It works on this computer only: it never sends anything (the
// upload and the certificate go out after sign-off, from batch.js).
import { DEFAULT_ATTESTATION, downloadLink } from './certificate.js';
import { button, el, personName, select } from './dom.js';
import { frameBoxes, isEdited } from './edits.js';
import { defaultWindow, loadFrame, toImageData } from './pixels.js';
import { REASONS } from './reasons.js';
import { COLORS } from './canvas.js';
import { templatesToml } from './templates.js';
import { Viewer } from './viewer.js';

const STYLES = new URL('./review.css', import.meta.url).href;
const THUMB = 112;
const mounts = new WeakMap();

const date = (v) => (/^\d{8}$/.test(v || '') ? `${v.slice(0, 4)}-${v.slice(4, 6)}-${v.slice(6)}` : v || '');

function groups(entries) {
  const studies = new Map();
  for (const e of entries) {
    const study = studies.get(e.record.studyUid) || { uid: e.record.studyUid, labels: e.local.labels || {}, series: new Map() };
    studies.set(study.uid, study);
    const series = study.series.get(e.record.seriesUid) || { uid: e.record.seriesUid, labels: e.local.labels || {}, entries: [] };
    study.series.set(series.uid, series);
    series.entries.push(e);
  }
  for (const st of studies.values()) {
    for (const se of st.series.values()) se.entries.sort((a, b) => Number(a.local.labels?.InstanceNumber || 0) - Number(b.local.labels?.InstanceNumber || 0));
  }
  return [...studies.values()];
}

export function mountReview(container, { run, call, t, attestation }) {
  const state = run.reviewing;
  const s = (key, params) => t(`reviewScreen.${key}`, params);  // its strings: reviewScreen.* of i18n/
  const reasons = Object.fromEntries(Object.keys(REASONS).map((code) => [code, s(`reasons.${code}`)]));
  const token = {};
  mounts.set(container, token);
  const live = () => mounts.get(container) === token;
  const seriesOf = (entry) => state.entries.filter((e) => e.record.seriesUid === entry.record.seriesUid);
  const viewer = new Viewer({ state, call, s, reasons, seriesOf });
  const thumbs = new Map();
  const seriesRedraw = [];
  // Thumbnails are drawn when they come into view (a held CT series can have hundreds of images).
  const seen = new IntersectionObserver((items) => {
    for (const item of items) {
      if (!item.isIntersecting) continue;
      seen.unobserve(item.target);
      const entry = state.entries[Number(/** @type {HTMLElement} */ (item.target).dataset.entry)];
      if (entry) { thumbs.get(entry).visible = true; drawThumb(entry); }
    }
  });
  const stats = el('p', { className: 'stats', 'aria-live': 'polite' });
  const templatesBox = el('div', { className: 'templates' });
  const sidebar = el('nav', { className: 'studies', part: 'review-studies', 'aria-label': s('studies') });
  const signBox = el('div', { className: 'attest', part: 'review-attestation' });
  const done = el('div', { className: 'signed', part: 'review-certificate', hidden: true, 'aria-live': 'polite' });
  const studies = groups(state.entries);

  const body = el('div', { className: 'review-body' }, sidebar, viewer.element);
  container.replaceChildren(
    el('link', { rel: 'stylesheet', href: STYLES }),
    el('header', { className: 'review-head' },
      el('h2', {}, s('title')),
      el('p', { className: 'intro' }, s('intro', { images: s('nImages', { count: state.entries.length }), studies: s('nStudies', { count: studies.length }) })),
      el('p', { className: 'notice' }, s('localOnly')), stats, templatesBox),
    body, signBox, done);
  container.hidden = false;

  for (const study of studies) {
    const l = study.labels;
    const block = el('section', { className: 'study' },
      el('h3', {}, [personName(l.PatientName) || '—', date(l.StudyDate), l.StudyDescription].filter(Boolean).join(' · ')));
    for (const series of study.series.values()) {
      const sl = series.labels;
      const list = el('div', { className: 'thumbs' });
      for (const entry of series.entries) list.append(thumb(entry));
      block.append(el('div', { className: 'series', dataset: { series: series.uid } },
        el('h4', {}, [s('series', { number: sl.SeriesNumber || '?' }), series.entries[0].record.modality, sl.SeriesDescription,
          s('nImages', { count: series.entries.length })].filter(Boolean).join(' · ')),
        seriesControls(series), list));
    }
    sidebar.append(block);
  }

  function seriesControls(series) {
    const box = el('div', { className: 'row series-controls' });
    const draw = () => {
      if (series.entries.every((e) => e.excluded)) {
        box.replaceChildren(el('span', { className: 'bad' }, s('excludedAs', { reason: reasons[series.entries[0].excluded] })),
          button(s('include'), () => state.include(series.entries), { className: 'secondary' }));
      } else {
        const reason = select(reasons, { 'aria-label': s('reason'), className: 'reason' });
        box.replaceChildren(reason, button(s('excludeSeries'), () => state.exclude(series.entries, reason.value), { className: 'secondary' }));
      }
    };
    seriesRedraw.push(draw);
    draw();
    return box;
  }

  function thumb(entry) {
    const canvas = el('canvas', { width: THUMB, height: THUMB });
    const badge = el('span', { className: 'badge' });
    const b = el('button', { type: 'button', className: 'thumb', part: 'review-thumb', dataset: { entry: entry.id },
      onclick: () => select_(entry) }, canvas, badge);
    thumbs.set(entry, { button: b, canvas, badge, visible: false });
    seen.observe(b);
    drawThumb(entry);
    return b;
  }

  async function drawThumb(entry) {
    const t_ = thumbs.get(entry);
    const labels = entry.local.labels || {};
    t_.button.setAttribute('aria-label', `${entry.record.modality} #${labels.InstanceNumber || entry.id + 1}`);
    t_.badge.textContent = entry.excluded ? s('excluded') : entry.busy ? '…' : entry.error ? '!' : isEdited(entry) ? s('edited') : '';
    t_.button.classList.toggle('excluded', !!entry.excluded);
    t_.button.classList.toggle('bad', !!entry.error);
    if (!entry.local.display || !entry.instance || !t_.visible) return;
    try {
      const frame = await loadFrame(entry, 0, call);
      const image = toImageData(frame, defaultWindow(frame, entry.local.display));
      const scale = THUMB / Math.max(frame.width, frame.height);
      const off = new OffscreenCanvas(frame.width, frame.height);
      off.getContext('2d').putImageData(image, 0, 0);
      t_.canvas.width = Math.round(frame.width * scale);
      t_.canvas.height = Math.round(frame.height * scale);
      const ctx = t_.canvas.getContext('2d');
      ctx.drawImage(off, 0, 0, t_.canvas.width, t_.canvas.height);
      for (const box of frameBoxes(entry, 0)) {
        if (box.kind === 'removed') continue;
        ctx.strokeStyle = COLORS[box.kind];
        ctx.lineWidth = 1.5;
        ctx.strokeRect(box.box[0] * scale, box.box[1] * scale, box.box[2] * scale, box.box[3] * scale);
      }
    } catch { /* no thumbnail: the viewer says why */ }
  }

  function select_(entry) {
    for (const [e, t_] of thumbs) t_.button.setAttribute('aria-current', e === entry ? 'true' : 'false');
    viewer.show(entry);
  }

  function summarize() {
    const edited = state.entries.filter((e) => isEdited(e)).length;
    const excluded = state.entries.filter((e) => e.excluded).length;
    stats.textContent = s('stats', { edited, excluded, toSend: state.entries.length - excluded });
    templatesBox.replaceChildren();
    if (state.templates.length) {
      templatesBox.append(el('span', {}, s('templatesHint', { count: state.templates.length })), ' ',
        downloadLink(templatesToml(state.templates), 'application/toml', 'device_templates.review.toml', s('templates')));
    }
  }

  const statement = attestation?.() || DEFAULT_ATTESTATION;
  signBox.replaceChildren(el('p', {}, el('strong', {}, s('attestation'))), el('blockquote', {}, statement));

  state.addEventListener('change', ({ detail: { entry } }) => {
    if (!live() || !thumbs.has(entry)) return;
    drawThumb(entry);
    summarize();
    for (const draw of seriesRedraw) draw();
    if (viewer.entry === entry) viewer.refresh();
  });
  const signed = () => {
    if (!live() || !run.signoff || signBox.hidden) return;
    // Signed: the batch is closed to edits; what remains is the upload and the certificate.
    signBox.hidden = true;
    body.hidden = true;
    for (const p of container.querySelectorAll('.review-head .intro, .review-head .notice')) p.hidden = true;
    done.hidden = false;
    const time = new Date(run.signoff.at).toLocaleString();
    done.replaceChildren(el('p', {}, el('strong', {}, s('signed', { reviewer: run.signoff.reviewer, role: run.signoff.role, time }))),
      el('p', { className: 'progress-note' }, s('uploading')));
  };
  run.addEventListener('state', signed);
  state.addEventListener('certificate', () => { if (live()) { signed(); showCertificate(); } });

  function showCertificate() {
    const c = state.certificate;
    const sum = state.summary();
    const lines = [];
    if (c.error?.name === 'NothingUploaded') lines.push(el('p', {}, s('certificateNone')));
    else if (c.error) lines.push(el('p', { className: 'bad' }, s('certificateError', { message: c.error.message })));
    else if (!run.uploader) lines.push(el('p', {}, s('certificateLocal')));
    else lines.push(el('p', { className: sum.complete ? 'ok' : 'bad' },
      sum.complete ? s('certificateStored', { studies: s('nStudies', { count: sum.studies }) }) : s('certificateIncomplete')));
    const links = el('p', { className: 'row' });
    if (c.json) links.append(downloadLink(c.json, 'application/json', `deid-certificate-${c.batch}.json`, s('downloadJson')));
    if (c.html) links.append(downloadLink(c.html, 'text/html', `deid-certificate-${c.batch}.html`, s('downloadHtml')));
    done.hidden = false;
    done.querySelector('.progress-note')?.remove();
    done.append(...lines, links);
  }

  summarize();
  if (state.entries.length) select_(state.entries[0]);
  container.scrollIntoView({ block: 'start' });  // the batch waits on this screen: bring it into view
}
