// Written by build_wasm.py into app/build-info.js.
export const BUILD: { lock: string; testHooks: boolean; [key: string]: unknown };
