// The one message protocol between the page and its workers.
//   request  {id, action, payload}
//   reply    {id, status: 'progress' | 'resolve' | 'reject', data}
// A rejection's data is {name, message}: a named error whose message never quotes a value from a file.

export const ACTIONS = Object.freeze({
  INIT: 'init', CONFIGURE: 'configure', PROCESS: 'process', STATS: 'stats', OCR: 'ocr', DECODE: 'decode',
  CERTIFICATE: 'certificate',
});
export const STATUS = Object.freeze({ PROGRESS: 'progress', RESOLVE: 'resolve', REJECT: 'reject' });

/** An Error that carries the name the worker gave it (ConfigError, InternalError, WorkerCrashed, ...). */
export class NamedError extends Error {
  constructor(name, message, extra = {}) {
    super(message);
    this.name = name;
    Object.assign(this, extra);
  }
}

export function errorData(err) {
  if (err && typeof err === 'object') {
    return { name: String(err.name || 'Error'), message: String(err.message || err.name || 'error'), fatal: !!err.fatal };
  }
  return { name: 'Error', message: String(err), fatal: false };
}

/** Worker side: answer requests with the given async handlers ({action: async (payload, progress) => data}). */
export function serve(scope, handlers) {
  scope.addEventListener('message', async (event) => {
    const { id, action, payload } = event.data || {};
    const post = (status, data, transfer = []) => scope.postMessage({ id, status, data }, transfer);
    const handler = handlers[action];
    if (!handler) {
      post(STATUS.REJECT, { name: 'ProtocolError', message: `unknown action ${String(action).slice(0, 40)}` });
      return;
    }
    try {
      const transfer = [];
      const data = await handler(payload, (p) => post(STATUS.PROGRESS, p), transfer);
      post(STATUS.RESOLVE, data, transfer);
    } catch (err) {
      post(STATUS.REJECT, errorData(err));
    }
  });
}

/** Page side: one worker, request/reply with ids; `onProgress` gets each progress message of a request. */
export class Channel {
  /** @param {Worker} worker @param {(message: any) => void} [onUnsolicited] */
  constructor(worker, onUnsolicited = () => {}) {
    this.worker = worker;
    this.nextId = 1;
    this.pending = new Map();
    worker.addEventListener('message', (event) => {
      const { id, status, data } = event.data || {};
      const entry = this.pending.get(id);
      if (!entry) { onUnsolicited(event.data); return; }
      if (status === STATUS.PROGRESS) { entry.onProgress?.(data); return; }
      this.pending.delete(id);
      if (status === STATUS.RESOLVE) entry.resolve(data);
      else entry.reject(new NamedError(data?.name || 'Error', data?.message || 'error', { fatal: !!data?.fatal }));
    });
  }

  /** @param {string} action @param {any} payload
   * @param {{transfer?: Transferable[], onProgress?: (data: any) => void}} [options] */
  request(action, payload, { transfer = [], onProgress } = {}) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, action, payload }, transfer);
    });
  }

  /** Reject everything in flight (the worker died or was terminated). */
  failAll(error) {
    for (const entry of this.pending.values()) entry.reject(error);
    this.pending.clear();
  }
}
