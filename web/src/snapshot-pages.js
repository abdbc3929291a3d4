// How a runtime's memory snapshot is kept (src/runtime.js): without its pages of zeros. A snapshot is the
// interpreter's whole heap, and about a third of it (Pyodide 314, core imported: ~11 of ~31 MB) is 4 KiB pages
// that hold nothing but zeros. Those are left out of what is stored; a restore reads only the others, into an array
// of the snapshot's size, which starts out all zeros. Stored: a little-endian u32 MAGIC, the u32 number of runs, a
// u32 pair (first page, pages) for each run of pages that are not all zeros (in order, apart), then those runs'
// bytes one after another. Nothing here knows what the bytes mean.
export const PAGE = 4096;
const MAGIC = 0x31504e53;  // 'SNP1'

function zeroPage(bytes, words, page) {
  const from = page * PAGE;
  const to = Math.min(from + PAGE, bytes.length);
  const wordsTo = Math.min(to >>> 2, words.length);
  for (let i = from >>> 2; i < wordsTo; i += 1) if (words[i] !== 0) return false;
  for (let i = wordsTo << 2; i < to; i += 1) if (bytes[i] !== 0) return false;
  return true;
}

/** The runs of pages of `bytes` that are not all zeros: [first page, pages] each, in order. */
export function dataRuns(bytes) {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >>> 2);
  const pages = Math.ceil(aligned.length / PAGE);
  const runs = [];
  let start = -1;
  for (let page = 0; page <= pages; page += 1) {
    const data = page < pages && !zeroPage(aligned, words, page);
    if (data && start < 0) start = page;
    if (!data && start >= 0) {
      runs.push([start, page - start]);
      start = -1;
    }
  }
  return runs;
}

/** What is stored for a snapshot: its parts (a Blob's), its pages of zeros left out. */
export function packPages(bytes) {
  const runs = dataRuns(bytes);
  const head = new Uint32Array(2 + 2 * runs.length);
  head[0] = MAGIC;
  head[1] = runs.length;
  runs.forEach(([first, pages], i) => { head[2 + 2 * i] = first; head[3 + 2 * i] = pages; });
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('snapshot: not a little-endian host');
  return [head, ...runs.map(([first, pages]) => bytes.subarray(first * PAGE, Math.min((first + pages) * PAGE, bytes.length)))];
}

/**
 * Read a stored snapshot (packPages) from `body` (a ReadableStream) into `bytes`, an array of the snapshot's size
 * that is all zeros. Rejects unless what is read is exactly one such snapshot of that size.
 */
export async function readPages(body, bytes) {
  const reader = body.getReader();
  const prefix = new Uint8Array(8);
  let index = null;  // the runs' pairs, as bytes, then as numbers
  let filled = 0;  // bytes of prefix, then of index, that have come
  let runs = null;
  let run = -1;
  let at = 0;  // where the next byte of the current run goes
  let end = 0;  // where the current run ends
  const nextRun = () => {
    run += 1;
    if (run >= runs.length / 2) return;
    const first = runs[2 * run];
    const pages = runs[2 * run + 1];
    const last = run > 0 ? (runs[2 * run - 2] + runs[2 * run - 1]) * PAGE : 0;
    at = first * PAGE;
    end = Math.min((first + pages) * PAGE, bytes.length);
    if (pages < 1 || at < last || at >= bytes.length || (first + pages - 1) * PAGE >= bytes.length) {
      throw new Error('snapshot: pages out of order or out of range');
    }
  };
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    let off = 0;
    while (off < value.length) {
      if (!runs && !index) {
        const n = Math.min(prefix.length - filled, value.length - off);
        prefix.set(value.subarray(off, off + n), filled);
        filled += n;
        off += n;
        if (filled < prefix.length) continue;
        const [magic, count] = new Uint32Array(prefix.buffer);
        if (magic !== MAGIC || count > Math.ceil(bytes.length / PAGE)) throw new Error('snapshot: not one this build keeps');
        index = new Uint8Array(8 * count);
        filled = 0;
      } else if (!runs) {
        const n = Math.min(index.length - filled, value.length - off);
        index.set(value.subarray(off, off + n), filled);
        filled += n;
        off += n;
      } else {
        if (run >= runs.length / 2) throw new Error('snapshot: longer than its pages');
        const n = Math.min(end - at, value.length - off);
        bytes.set(value.subarray(off, off + n), at);
        at += n;
        off += n;
        if (at === end) nextRun();
      }
      if (index && !runs && filled === index.length) {
        runs = new Uint32Array(index.buffer);
        nextRun();
      }
    }
  }
  if (!runs || run < runs.length / 2) throw new Error('snapshot: shorter than its pages');
}
