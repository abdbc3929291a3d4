// tesseract.js 7, copied by the build: the part ocr.js uses.
export interface TesseractWorker {
  recognize(image: unknown, options?: object, output?: object): Promise<{ data: any }>;
  setParameters(params: Record<string, string | number>): Promise<unknown>;
  terminate(): Promise<unknown>;
}
declare const Tesseract: {
  createWorker(langs: string, oem: number, options: Record<string, unknown>): Promise<TesseractWorker>;
};
export default Tesseract;
