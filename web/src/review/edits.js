// The reviewer's edits as data ({added, removed}: frame|'all' -> boxes), and the masks of a frame as the screen
// draws them: after a re-run the core's own account (pixels.review), before it the first run's masks.

const eq = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

export function framesOf(map, frame) {
  return [...(map?.[String(frame)] || [])];
}

/** [{kind: auto|added|removed, box, ref}] on one frame. ref: where an added box lives in the edits. */
export function frameBoxes(entry, frame) {
  const px = entry.record.pixels || {};
  const review = px.review;
  const out = [];
  const auto = review ? framesOf(review.auto, frame) : framesOf(px.boxes, frame);
  for (const box of auto) out.push({ kind: 'auto', box });
  for (const box of review ? framesOf(review.removed, frame) : []) out.push({ kind: 'removed', box });
  for (const key of [String(frame), 'all']) {
    for (const box of entry.edits.added[key] || []) out.push({ kind: 'added', box, ref: key });
  }
  return out;
}

/** Edits are {added: {frame|'all': [[x, y, w, h]]}, removed: {...}} (the shape py_deid.review.Edits reads). */
export function emptyEdits() { return { added: {}, removed: {} }; }

export function cloneEdits(edits) {
  return structuredClone(edits || emptyEdits());
}

export function addBox(edits, key, box) {
  const list = (edits.added[key] ||= []);
  if (!list.some((b) => eq(b, box))) list.push([...box]);
  return edits;
}

export function deleteAdded(edits, key, box) {
  edits.added[key] = (edits.added[key] || []).filter((b) => !eq(b, box));
  if (!edits.added[key].length) delete edits.added[key];
  return edits;
}

export function removeAuto(edits, key, box) {
  const list = (edits.removed[key] ||= []);
  if (!list.some((b) => eq(b, box))) list.push([...box]);
  return edits;
}

/** Undo a removal: drop the removed rectangles (on this frame or every frame) that took this box away. */
export function restore(edits, frame, box) {
  const within = (r) => r[0] - 2 <= box[0] && r[1] - 2 <= box[1] && box[0] + box[2] <= r[0] + r[2] + 2
    && box[1] + box[3] <= r[1] + r[3] + 2;
  for (const key of [String(frame), 'all']) {
    if (!edits.removed[key]) continue;
    edits.removed[key] = edits.removed[key].filter((r) => !within(r));
    if (!edits.removed[key].length) delete edits.removed[key];
  }
  return edits;
}

export function isEdited(entry) {
  return Object.keys(entry.edits.added).length > 0 || Object.keys(entry.edits.removed).length > 0;
}
