// npm pyodide's loader, copied by the build (its own pyodide.d.ts is far larger than what the worker uses).
export interface PyodideInterface {
  loadPackage(names: string | string[], options?: object): Promise<unknown>;
  runPythonAsync(code: string, options?: object): Promise<any>;
  runPython(code: string, options?: object): any;
  pyimport(name: string): any;
  unpackArchive(buffer: ArrayBuffer | ArrayBufferView, format: string, options?: object): void;
  setStdout(options: object): void;
  setStderr(options: object): void;
  FS: any;
  globals: any;
  [key: string]: any;
}
export function loadPyodide(options?: Record<string, unknown>): Promise<PyodideInterface>;
