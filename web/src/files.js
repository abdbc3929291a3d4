// Where files come from: drops (files and folders, recursively) and the two pickers. Names and paths stay on
// this page (they can be PHI): they are shown in the table and never sent anywhere.

/** Entries {file, path} from an <input type=file> (with or without webkitdirectory). */
export function fromFileList(list) {
  return Array.from(list || [], (file) => ({ file, path: file.webkitRelativePath || file.name }));
}

/** Entries from a drop: folders are walked recursively (a CD's DICOMDIR, viewer and autorun files included). */
export async function fromDataTransfer(dataTransfer) {
  const roots = [];
  for (const item of Array.from(dataTransfer.items || [])) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
    if (entry) roots.push(entry);
    else { const f = item.getAsFile(); if (f) roots.push(f); }
  }
  if (!roots.length) return fromFileList(dataTransfer.files);
  const out = [];
  for (const root of roots) {
    if (root instanceof File) out.push({ file: root, path: root.name });
    else await walk(root, out);
  }
  return out;
}

async function walk(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: entry.fullPath.replace(/^\//, '') });
    return;
  }
  if (!entry.isDirectory) return;
  const reader = entry.createReader();
  for (;;) {
    // readEntries returns at most ~100 entries per call: call until it returns none.
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) await walk(child, out);
  }
}

/** A look at the first bytes: a reason to skip, or null (let the core decide). Same rule as the core's reader:
 * "DICM" at 128, or a bare dataset starting with a group 0008 element. */
export function sniffBytes(head) {
  if (head.length === 0) return { code: 'empty', message: 'empty file' };
  if (head.length >= 132 && head[128] === 0x44 && head[129] === 0x49 && head[130] === 0x43 && head[131] === 0x4d) return null;
  const rawDataset = head.length > 8 && ((head[0] === 0x08 && head[1] === 0x00) || (head[0] === 0x00 && head[1] === 0x08));
  return rawDataset ? null : { code: 'not-dicom', message: 'not a DICOM file' };
}

const SNIFF_FIRST = 4 << 20;  // larger files (a viewer .exe, a video) are sniffed before being read whole

/** Read a file for de-identification: {buffer} or {skip: {code, message}}; one read for small files. */
export async function readEntry(file) {
  if (file.size > SNIFF_FIRST) {
    const skip = sniffBytes(new Uint8Array(await file.slice(0, 132).arrayBuffer()));
    if (skip) return { skip };
  }
  const buffer = await file.arrayBuffer();
  const skip = sniffBytes(new Uint8Array(buffer, 0, Math.min(132, buffer.byteLength)));
  return skip ? { skip } : { buffer };
}
