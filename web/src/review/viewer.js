// One instance under review: its de-identified frames (scrubber, window/level for grayscale), the masks over them
// with the box editor, the OCR text found in each mask, exclusion, and the header before and after.
import { FrameCanvas } from './canvas.js';
import { button, el, personName, select } from './dom.js';
import { addBox, cloneEdits, deleteAdded, frameBoxes, removeAuto, restore } from './edits.js';
import { headerTable } from './header-table.js';
import { defaultWindow, loadFrame, toImageData } from './pixels.js';

const overlap = (w, b) => {
  const x = Math.min(w[0] + w[2], b[0] + b[2]) - Math.max(w[0], b[0]);
  const y = Math.min(w[1] + w[3], b[1] + b[3]) - Math.max(w[1], b[1]);
  return x > 0 && y > 0 ? (x * y) / Math.max(1, w[2] * w[3]) : 0;
};

export class Viewer {
  constructor({ state, call, s, reasons, seriesOf }) {
    this.state = state;
    this.call = call;
    this.s = s;
    this.seriesOf = seriesOf;
    this.reasons = reasons;  // exclusion reason code -> the text shown
    this.entry = null;
    this.frame = 0;
    this.window = null;
    this.image = null;
    this.pending = null;
    this.canvas = new FrameCanvas({
      onDraw: (box) => { this.pending = { kind: 'pending', box }; this.canvas.selected = this.pending; this.#paint(); this.#panel(); },
      onSelect: () => this.#panel(),
      onChange: (target, box) => this.#moved(target, box),
    });
    this.canvas.canvas.addEventListener('keydown', (e) => this.#key(e));
    this.element = el('section', { className: 'viewer', part: 'review-viewer' });
  }

  async show(entry, { keepFrame = false } = {}) {
    const same = this.entry === entry;
    this.entry = entry;
    if (!same || !keepFrame) { this.frame = 0; this.window = null; this.pending = null; this.canvas.selected = null; }
    this.#layout();
    await this.#load();
  }

  /** The entry changed (a re-run finished, an exclusion): draw it again at the same frame and window. */
  refresh() {
    if (!this.entry) return;
    this.exclusionBox.replaceChildren(this.#exclusion());
    this.#statusText();
    this.#load();
  }

  #layout() {
    const { entry, s } = this;
    const d = entry.local.display;
    const frames = d?.frames || 1;
    this.frameLabel = el('span', { className: 'frame-label' }, s('frame', { n: this.frame + 1, total: frames }));
    this.scrubber = el('input', { type: 'range', min: '0', max: String(frames - 1), value: String(this.frame),
      'aria-label': s('frame', { n: this.frame + 1, total: frames }), 'aria-valuetext': s('frame', { n: this.frame + 1, total: frames }),
      part: 'review-scrubber', disabled: frames < 2 });
    this.scrubber.addEventListener('input', () => this.#goto(Number(this.scrubber.value)));
    const frameBar = el('div', { className: 'tools' },
      button('◀', () => this.#goto(this.frame - 1), { 'aria-label': s('prevFrame'), disabled: frames < 2 }),
      this.scrubber, button('▶', () => this.#goto(this.frame + 1), { 'aria-label': s('nextFrame'), disabled: frames < 2 }),
      this.frameLabel);
    this.wl = el('div', { className: 'tools wl', hidden: true });
    this.modeDraw = el('input', { type: 'radio', name: 'review-mode', value: 'draw', checked: this.canvas.mode === 'draw' });
    this.modeSelect = el('input', { type: 'radio', name: 'review-mode', value: 'select', checked: this.canvas.mode !== 'draw' });
    for (const r of [this.modeDraw, this.modeSelect]) {
      r.addEventListener('change', () => { this.canvas.mode = this.modeDraw.checked ? 'draw' : 'select'; this.canvasBox.dataset.mode = this.canvas.mode; });
    }
    const modes = el('div', { className: 'modes', role: 'radiogroup', 'aria-label': s('tools') },
      el('label', {}, this.modeSelect, ` ${s('select')}`), el('label', {}, this.modeDraw, ` ${s('draw')}`),
      el('span', { className: 'muted' }, s('drawHint')),
      button(s('newBox'), () => { this.canvas.newBox(); this.canvas.canvas.focus(); }, { className: 'secondary' }),
      el('span', { className: 'muted', id: 'review-keys' }, s('keysHint')));
    this.canvas.canvas.setAttribute('aria-describedby', 'review-keys');
    this.canvas.canvas.setAttribute('aria-label', s('canvasLabel'));
    this.canvasBox = el('div', { className: 'canvas-box', dataset: { mode: this.canvas.mode } }, this.canvas.canvas);
    this.status = el('p', { className: 'status', role: 'status' });
    this.boxPanel = el('div', { className: 'box-panel', part: 'review-boxes' });
    const legend = el('p', { className: 'legend' },
      ...[['auto', 'legendAuto'], ['added', 'legendAdded'], ['removed', 'legendRemoved']].map(([k, label]) =>
        el('span', {}, el('span', { className: `swatch ${k}` }), ` ${s(label)} `)));
    const labels = entry.local.labels || {};
    const title = el('h3', {}, [personName(labels.PatientName), entry.record.modality, labels.SeriesDescription,
      `${s('image')} ${labels.InstanceNumber || entry.id + 1}`].filter(Boolean).join(' · '));
    this.element.replaceChildren(
      el('div', { className: 'viewer-head' }, title, this.exclusionBox = el('div', {}, this.#exclusion())),
      el('div', { className: 'controls' }, frameBar, this.wl),
      el('div', { className: 'stage' },
        el('div', { className: 'image-column' }, this.canvasBox, el('div', { className: 'row' }, legend, this.status)),
        el('div', { className: 'side' }, modes, this.boxPanel)),
      entry.local.header ? headerTable(entry.local.header, s) : '');
    this.#statusText();
  }

  #exclusion() {
    const { entry, s } = this;
    if (entry.excluded) {
      return el('div', { className: 'exclusion excluded' }, el('strong', {}, s('excludedAs', { reason: this.reasons[entry.excluded] })),
        button(s('include'), () => this.state.include([entry])));
    }
    const reason = select(this.reasons, { 'aria-label': s('reason'), className: 'reason' });
    return el('div', { className: 'exclusion' }, reason,
      button(s('excludeImage'), () => this.state.exclude([entry], reason.value), { className: 'secondary' }));
  }

  #statusText() {
    const { entry, s } = this;
    this.status.className = `status${entry.error ? ' bad' : ''}`;
    this.status.textContent = entry.busy ? s('rerunning') : entry.error ? s('rerunFailed', { message: entry.error.message }) : '';
  }

  async #load() {
    const { entry } = this;
    const token = (this.loading = (this.loading || 0) + 1);  // a later frame or entry wins over a slower earlier one
    if (!entry.local.display || !entry.instance) {
      this.canvasBox.replaceChildren(el('p', { className: 'muted' }, this.s('noPreview')));
      this.#panel();
      return;
    }
    let image;
    try {
      image = await loadFrame(entry, this.frame, this.call);
    } catch {
      if (token === this.loading) this.canvasBox.replaceChildren(el('p', { className: 'muted' }, this.s('noPreview')));
      return;
    }
    if (token !== this.loading || this.entry !== entry) return;
    this.image = image;
    this.window ||= defaultWindow(image, entry.local.display);
    if (this.wlFor !== this.wl) { this.wlFor = this.wl; this.#wlTools(); }  // built once per layout: typing keeps focus
    this.#paint();
    this.#panel();
  }

  #wlTools() {
    const { image, s } = this;
    this.wl.hidden = !image.gray;
    if (!image.gray) return;
    const lo = Math.floor(image.min); const hi = Math.ceil(image.max);
    const span = Math.max(1, hi - lo);
    const num = (name, value, min, max) => el('input', { type: 'number', name, value: String(Math.round(value)),
      min: String(min), max: String(max), step: '1', part: 'review-input', 'aria-label': s(name) });
    const rng = (name, value, min, max) => el('input', { type: 'range', name: `${name}-range`, value: String(Math.round(value)),
      min: String(min), max: String(max), step: '1', 'aria-label': s(name) });
    const center = num('center', this.window.center, lo - span, hi + span);
    const width = num('width', this.window.width, 1, 2 * span);
    const centerR = rng('center', this.window.center, lo, hi);
    const widthR = rng('width', this.window.width, 1, 2 * span);
    const set = (c, w) => {
      this.window = { center: c, width: Math.max(1, w) };
      center.value = centerR.value = String(Math.round(c));
      width.value = widthR.value = String(Math.round(this.window.width));
      this.#paint();
    };
    center.addEventListener('input', () => set(Number(center.value), this.window.width));
    width.addEventListener('input', () => set(this.window.center, Number(width.value)));
    centerR.addEventListener('input', () => set(Number(centerR.value), this.window.width));
    widthR.addEventListener('input', () => set(this.window.center, Number(widthR.value)));
    const d = this.entry.local.display;
    this.wl.replaceChildren(el('strong', {}, s('window')),
      el('label', {}, `${s('center')} `, center), centerR, el('label', {}, `${s('width')} `, width), widthR,
      button(s('autoWindow'), () => set((image.min + image.max) / 2, image.max - image.min), { className: 'secondary' }),
      d.window ? button(s('headerWindow'), () => set(d.window[0], d.window[1]), { className: 'secondary' }) : '');
  }

  #paint() {
    if (!this.image || !this.entry) return;
    const boxes = frameBoxes(this.entry, this.frame);
    if (this.pending) boxes.push(this.pending);
    this.canvas.show(toImageData(this.image, this.window), boxes);
  }

  async #goto(frame) {
    const total = this.entry.local.display?.frames || 1;
    const f = Math.max(0, Math.min(total - 1, frame));
    if (f === this.frame) return;
    this.frame = f;
    this.pending = null;
    this.canvas.selected = null;
    this.scrubber.value = String(f);
    this.frameLabel.textContent = this.s('frame', { n: f + 1, total });
    // Screen readers announce the slider's value text: the frame shown, not the one it started on.
    this.scrubber.setAttribute('aria-valuetext', this.frameLabel.textContent);
    this.scrubber.setAttribute('aria-label', this.frameLabel.textContent);
    await this.#load();
  }

  #words(box) {
    return (this.entry.words || []).filter((w) => (w.frames || [0]).includes(this.frame) && overlap(w.box, box) >= 0.5);
  }

  #panel() {
    const { s, entry } = this;
    if (!entry) return;
    this.#statusText();
    const sel = this.canvas.selected;
    const items = [];
    if (this.pending) {
      const b = this.pending.box;
      items.push(el('div', { className: 'pending' },
        el('p', {}, el('strong', {}, s('kind_pending')), ' ',
          el('span', { className: 'coords', dataset: { box: b.join(',') } }, s('coords', { x: b[0], y: b[1], w: b[2], h: b[3] }))),
        el('div', { className: 'actions' },
          button(s('applyFrame'), () => this.#add('frame', b)),
          button(s('applyAllFrames'), () => this.#add('all', b)),
          button(s('applySeries'), () => this.#add('series', b)),
          button(s('applyDevice'), () => this.#add('device', b)),
          button(s('cancel'), () => { this.pending = null; this.canvas.selected = null; this.#paint(); this.#panel(); }, { className: 'secondary' }))));
    }
    const boxes = frameBoxes(entry, this.frame);
    const list = el('ul', { className: 'boxes' });
    for (const b of boxes) {
      const words = this.#words(b.box);
      const text = [...new Set(words.map((w) => w.text))].join(' ');
      const li = el('li', { className: `box ${b.kind}${sel && sel.kind === b.kind && sel.box.every((v, i) => v === b.box[i]) ? ' selected' : ''}`,
        dataset: { kind: b.kind, box: b.box.join(',') } },
      el('span', { className: `swatch ${b.kind}` }),
      el('span', { className: 'what' }, s(`kind_${b.kind}`), ' ',
        el('span', { className: 'coords' }, s('coords', { x: b.box[0], y: b.box[1], w: b.box[2], h: b.box[3] }))),
      el('span', { className: 'ocr' }, text ? s('ocrText', { text }) : s('noText')),
      el('span', { className: 'actions' }, ...this.#boxActions(b)));
      li.tabIndex = 0;  // keyboard: Enter on a listed mask selects it on the image, for the arrow keys
      li.addEventListener('click', (e) => { if (!e.target.closest('button')) this.canvas.select(boxes.find((x) => x === b)); });
      li.addEventListener('keydown', (e) => {
        if ((e.key === 'Enter' || e.key === ' ') && e.target === li) {
          e.preventDefault();
          this.canvas.select(b);
          this.canvas.canvas.focus();
        }
      });
      list.append(li);
    }
    const kept = (entry.words || []).filter((w) => !w.masked && w.reason !== 'noise' && (w.frames || [0]).includes(this.frame)
      && !boxes.some((b) => overlap(w.box, b.box) >= 0.5));
    this.boxPanel.replaceChildren(...items, el('h4', {}, s('boxesTitle')), boxes.length ? list : el('p', { className: 'muted' }, s('noBoxes')),
      kept.length ? el('details', {}, el('summary', {}, s('keptText')),
        el('p', { className: 'kept-words' }, [...new Set(kept.map((w) => w.text))].join(' · '))) : '');
  }

  #boxActions(b) {
    const { s } = this;
    if (b.kind === 'auto') {
      return [button(s('removeBox'), () => this.#edit((e) => removeAuto(e, String(this.frame), b.box)), { className: 'secondary' }),
        (this.entry.local.display?.frames || 1) > 1
          ? button(s('removeBoxAll'), () => this.#edit((e) => removeAuto(e, 'all', b.box)), { className: 'secondary' }) : ''];
    }
    if (b.kind === 'added') return [button(s('deleteBox'), () => this.#edit((e) => deleteAdded(e, b.ref, b.box)), { className: 'secondary' })];
    return [button(s('restoreBox'), () => this.#edit((e) => restore(e, this.frame, b.box)), { className: 'secondary' })];
  }

  #edit(change) {
    const edits = change(cloneEdits(this.entry.edits));
    this.pending = null;
    this.canvas.selected = null;
    const done = this.state.apply(this.entry, edits).catch((err) => { this.status.textContent = err.message; });
    this.#paint();
    this.#panel();
    return done;
  }

  #add(scope, box) {
    if (scope === 'frame' || scope === 'all') return this.#edit((e) => addBox(e, scope === 'all' ? 'all' : String(this.frame), box));
    this.pending = null;
    this.canvas.selected = null;
    const failed = (err) => { this.status.className = 'status bad'; this.status.textContent = err.message; };
    if (scope === 'device') return this.state.addTemplate(this.entry, [box]).catch(failed);
    return Promise.all(this.seriesOf(this.entry).filter((e) => !e.excluded).map((e) =>
      this.state.apply(e, addBox(cloneEdits(e.edits), 'all', box)))).catch(failed);
  }

  #moved(target, box) {
    if (target.kind === 'pending') { this.pending = { kind: 'pending', box }; this.canvas.selected = this.pending; this.#paint(); this.#panel(); return; }
    if (target.kind === 'added') this.#edit((e) => addBox(deleteAdded(e, target.ref, target.box), target.ref, box));
    else if (target.kind === 'auto') this.#edit((e) => addBox(removeAuto(e, String(this.frame), target.box), String(this.frame), box));
  }

  #key(e) {
    const sel = this.canvas.selected;
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (arrows[e.key] && sel && sel.kind !== 'removed') {
      // Arrows move the selected mask (Shift: ten times as far); with Alt they size it.
      e.preventDefault();
      const step = e.shiftKey ? 10 : 1;
      const [dx, dy] = arrows[e.key];
      this.canvas.nudge(dx * step, dy * step, e.altKey);
      return;
    }
    if (e.key === 'Enter' && this.canvas.commit()) { e.preventDefault(); return; }
    if (e.key === 'Enter' && sel?.kind === 'pending') { e.preventDefault(); this.#add('frame', sel.box); return; }  // a new mask: on this frame
    if (e.key === 'Escape' && this.canvas.cancel()) { e.preventDefault(); return; }
    if (e.key === 'n' || e.key === 'N') { e.preventDefault(); this.canvas.newBox(); return; }
    if ((e.key === 'Delete' || e.key === 'Backspace') && sel) {
      e.preventDefault();
      if (sel.kind === 'pending') { this.pending = null; this.canvas.selected = null; this.#paint(); this.#panel(); } else this.#boxActions(sel)[0]?.click?.();
    } else if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      this.#goto(this.frame + (e.key === 'ArrowRight' ? 1 : -1));
    }
  }
}
