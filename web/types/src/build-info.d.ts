// Written by build_wasm.py into app/build-info.js.
export const BUILD: {
  lock: string; testHooks: boolean; runtime: string; stdlib: string; packages: { file: string; sha256: string }[];
  [key: string]: unknown;
};
