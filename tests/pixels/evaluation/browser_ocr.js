// The browser's OCR engine (tesseract.js 7, the same model, the parameters of web/src/ocr.js) run by Node, for
// scoring the evaluation set as the browser would read it. Requests on stdin: psm (uint32 LE), length (uint32
// LE), PGM bytes; one JSON line of words per request on stdout, after a first line "READY".
const path = require('path');

const WEB = process.argv[2];
const Tesseract = require(path.join(WEB, 'node_modules/tesseract.js'));

function parseTsv(tsv) {  // as web/src/ocr.js parseTsv
  const words = [];
  for (const row of tsv.split('\n')) {
    const cells = row.split('\t');
    if (cells.length < 12 || cells[0] !== '5') continue;
    const text = cells.slice(11).join('\t');
    if (!text.trim()) continue;
    const [left, top, width, height] = cells.slice(6, 10).map(Number);
    words.push({ text, left, top, width, height, confidence: Number(cells[10]) });
  }
  return words;
}

(async () => {
  const worker = await Tesseract.createWorker('eng', 1, {
    langPath: path.join(WEB, 'node_modules/@tesseract.js-data/eng/4.0.0_best_int'), cacheMethod: 'none', gzip: true,
  });
  let psmNow = null;
  let buf = Buffer.alloc(0);
  let busy = false;
  async function pump() {
    if (busy) return;
    busy = true;
    while (buf.length >= 8) {
      const psm = buf.readUInt32LE(0);
      const n = buf.readUInt32LE(4);
      if (buf.length < 8 + n) break;
      const pgm = Buffer.from(buf.subarray(8, 8 + n));
      buf = buf.subarray(8 + n);
      if (psm !== psmNow) {
        await worker.setParameters({ tessedit_pageseg_mode: String(psm), user_defined_dpi: '96' });
        psmNow = psm;
      }
      const { data } = await worker.recognize(pgm, {}, { tsv: true, text: false, blocks: false });
      process.stdout.write(JSON.stringify(parseTsv(data.tsv || '')) + '\n');
    }
    busy = false;
  }
  process.stdin.on('data', (d) => { buf = Buffer.concat([buf, d]); pump(); });
  process.stdin.on('end', async () => { await pump(); await worker.terminate(); });
  process.stdout.write('READY\n');
})();
