// The packages' pack (build_wasm.py site_pack) fetched with its sha256 as Subresource Integrity and gunzipped by
// the browser: by the worker (runtime.js), or beside a restore by the thread that reads the snapshot
// (start-reader.js).

/** @param {string} url @param {string} integrity @returns {Promise<ArrayBuffer>} */
export async function fetchPack(url, integrity) {
  const response = await fetch(url, { integrity });
  if (!response.ok || !response.body) throw new Error(`package pack: HTTP ${response.status}`);
  return new Response(response.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer();
}
