// The image of one frame on a canvas, its masks drawn over it, and the gestures of the box editor: draw a new
// rectangle, select one, move it, resize it from a corner; the same by keyboard (nudge, then commit).

export const COLORS = { auto: '#ff8c1a', added: '#2f8cff', removed: '#b0b7bf', pending: '#ffd400' };
const HANDLE = 9;  // display pixels around a corner that grab it

const inside = (b, x, y) => x >= b[0] && y >= b[1] && x <= b[0] + b[2] && y <= b[1] + b[3];

export class FrameCanvas {
  constructor({ onDraw, onSelect, onChange }) {
    this.canvas = document.createElement('canvas');
    this.canvas.setAttribute('part', 'review-canvas');
    this.canvas.tabIndex = 0;
    this.ctx = this.canvas.getContext('2d');
    this.image = null;  // ImageData
    this.boxes = [];  // [{kind, box, ref}]
    this.selected = null;
    this.mode = 'select';
    this.onDraw = onDraw;
    this.onSelect = onSelect;
    this.onChange = onChange;
    this.gesture = null;
    const c = this.canvas;
    c.addEventListener('pointerdown', (e) => this.#down(e));
    c.addEventListener('pointermove', (e) => this.#move(e));
    c.addEventListener('pointerup', () => this.#up());
    c.addEventListener('pointercancel', () => { this.gesture = null; this.draw(); });
  }

  /** Image pixels per display pixel (the canvas is scaled by CSS to fit its column). */
  get ratio() { return this.canvas.width / Math.max(1, this.canvas.clientWidth); }

  #point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [Math.round((e.clientX - r.left) * this.canvas.width / r.width),
      Math.round((e.clientY - r.top) * this.canvas.height / r.height)];
  }

  show(image, boxes) {
    this.image = image;
    if (this.canvas.width !== image.width || this.canvas.height !== image.height) {
      this.canvas.width = image.width;
      this.canvas.height = image.height;
    }
    this.boxes = boxes;
    if (this.selected) this.selected = boxes.find((b) => same(b, this.selected)) || null;
    this.draw();
  }

  draw() {
    if (!this.image) return;
    const { ctx } = this;
    ctx.putImageData(this.image, 0, 0);
    const line = Math.max(1, 2 * this.ratio);
    const css = getComputedStyle(this.canvas);  // themable: --review-auto, --review-added, --review-removed
    const color = (kind) => css.getPropertyValue(`--review-${kind}`).trim() || COLORS[kind];
    const order = ['removed', 'auto', 'added', 'pending'];
    const boxes = [...this.boxes].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
    for (const b of boxes) {
      const [x, y, w, h] = this.gesture?.target === b ? this.gesture.box : b.box;
      ctx.save();
      ctx.lineWidth = b === this.selected ? line * 2 : line;
      ctx.strokeStyle = color(b.kind);
      if (b.kind === 'removed' || b.kind === 'pending') ctx.setLineDash([6 * this.ratio, 4 * this.ratio]);
      if (b.kind === 'added' || b.kind === 'auto') {
        ctx.fillStyle = b.kind === 'added' ? 'rgba(47,140,255,.22)' : 'rgba(255,140,26,.18)';
        ctx.fillRect(x, y, w, h);
      }
      ctx.strokeRect(x + line / 2, y + line / 2, Math.max(1, w - line), Math.max(1, h - line));
      if (b === this.selected && b.kind !== 'removed') {
        ctx.fillStyle = color(b.kind);
        const s = HANDLE * this.ratio * 0.8;
        for (const [cx, cy] of corners([x, y, w, h])) ctx.fillRect(cx - s / 2, cy - s / 2, s, s);
      }
      ctx.restore();
    }
    if (this.gesture?.drawing) {
      const [x, y, w, h] = this.gesture.box;
      ctx.save();
      ctx.strokeStyle = COLORS.pending;
      ctx.lineWidth = line;
      ctx.setLineDash([6 * this.ratio, 4 * this.ratio]);
      ctx.strokeRect(x, y, w, h);
      ctx.restore();
    }
  }

  select(target) {
    this.selected = target && (this.boxes.find((b) => same(b, target)) || target);
    this.draw();
    this.onSelect?.(target);
  }

  /** Keyboard editing of the selected box: move (or, with resize, grow) it by dx, dy image pixels. A new box
   * changes at once; an applied one is previewed until commit(), as a drag is until the pointer is released. */
  nudge(dx, dy, resize = false) {
    const target = this.selected;
    if (!target || target.kind === 'removed' || !this.image) return false;
    const W = this.canvas.width; const H = this.canvas.height;
    const [x, y, w, h] = this.gesture?.target === target ? this.gesture.box : target.box;
    const box = resize
      ? [x, y, Math.max(3, Math.min(W - x, w + dx)), Math.max(3, Math.min(H - y, h + dy))]
      : [clampTo(x + dx, W - w), clampTo(y + dy, H - h), w, h];
    if (target.kind === 'pending') {
      this.onChange?.(target, box);
      return true;
    }
    this.gesture = { target, corner: -1, start: [0, 0], box, keyboard: true };
    this.draw();
    return true;
  }

  /** Apply a keyboard preview (Enter); cancel() drops it (Escape). */
  commit() {
    const g = this.gesture;
    if (!g?.keyboard) return false;
    this.gesture = null;
    if (g.box.some((v, i) => v !== g.target.box[i])) this.onChange?.(g.target, g.box);
    this.draw();
    return true;
  }

  cancel() {
    if (!this.gesture?.keyboard) return false;
    this.gesture = null;
    this.draw();
    return true;
  }

  /** A new box in the middle of the image, for keyboard users: then moved and sized with the arrow keys. */
  newBox() {
    if (!this.image) return;
    const W = this.canvas.width; const H = this.canvas.height;
    const w = Math.max(3, Math.round(W / 5)); const h = Math.max(3, Math.round(H / 12));
    this.onDraw?.([Math.round((W - w) / 2), Math.round((H - h) / 2), w, h]);
  }

  #hit(x, y) {
    const order = ['pending', 'added', 'auto', 'removed'];
    const hits = this.boxes.filter((b) => inside(b.box, x, y));
    hits.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.box[2] * a.box[3] - b.box[2] * b.box[3]);
    return hits[0] || null;
  }

  #down(e) {
    if (!this.image || e.button !== 0) return;
    const [x, y] = this.#point(e);
    this.canvas.setPointerCapture(e.pointerId);
    if (this.mode === 'draw') {
      this.gesture = { drawing: true, start: [x, y], box: [x, y, 0, 0] };
      return;
    }
    const grab = HANDLE * this.ratio;
    const corner = this.selected && this.selected.kind !== 'removed'
      ? corners(this.selected.box).findIndex(([cx, cy]) => Math.abs(cx - x) <= grab && Math.abs(cy - y) <= grab) : -1;
    const target = corner >= 0 ? this.selected : this.#hit(x, y);
    if (target !== this.selected) this.select(target);
    if (target && target.kind !== 'removed') this.gesture = { target, corner, start: [x, y], box: [...target.box] };
  }

  #move(e) {
    const g = this.gesture;
    if (!g) return;
    const [x, y] = this.#point(e);
    const W = this.canvas.width; const H = this.canvas.height;
    if (g.drawing) {
      const [sx, sy] = g.start;
      const x0 = clampTo(Math.min(sx, x), W); const y0 = clampTo(Math.min(sy, y), H);
      g.box = [x0, y0, clampTo(Math.max(sx, x), W) - x0, clampTo(Math.max(sy, y), H) - y0];
    } else if (g.corner >= 0) {
      const [bx, by, bw, bh] = g.target.box;
      const fixed = corners([bx, by, bw, bh])[3 - g.corner];  // the opposite corner stays
      const nx = clampTo(x, W); const ny = clampTo(y, H);
      g.box = [Math.min(fixed[0], nx), Math.min(fixed[1], ny), Math.abs(nx - fixed[0]), Math.abs(ny - fixed[1])];
    } else {
      const [bx, by, bw, bh] = g.target.box;
      g.box = [clampTo(bx + x - g.start[0], W - bw), clampTo(by + y - g.start[1], H - bh), bw, bh];
    }
    this.draw();
  }

  #up() {
    const g = this.gesture;
    this.gesture = null;
    if (!g) return;
    const [, , w, h] = g.box;
    if (g.drawing) {
      if (w >= 3 && h >= 3) this.onDraw?.(g.box);
    } else if (w >= 3 && h >= 3 && g.box.some((v, i) => v !== g.target.box[i])) {
      this.onChange?.(g.target, g.box);
    }
    this.draw();
  }
}

function corners([x, y, w, h]) { return [[x, y], [x + w, y], [x, y + h], [x + w, y + h]]; }
function clampTo(v, max) { return Math.max(0, Math.min(max, Math.round(v))); }
export function same(a, b) { return a.kind === b.kind && a.box.every((v, i) => v === b.box[i]); }
