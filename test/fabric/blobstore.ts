/**
 * An in-memory Azure Storage stand-in for the status blob (fabric-protocol.md §4.9): block-blob PUTs, page-blob
 * create + `comp=page` range writes, and GETs. It keeps the latest status JSON the agent wrote.
 */

export interface BlobPut {
  /** Blob name: the URL path without query. */
  name: string;
  query: URLSearchParams;
  headers: Record<string, string | undefined>;
  body: Buffer;
}

export interface BlobResult {
  status: number;
  error?: string;
}

interface Blob {
  type: 'BlockBlob' | 'PageBlob';
  data: Buffer;
}

export class BlobStore {
  private blobs = new Map<string, Blob>();
  /** The last status document the agent completed (parsed JSON), with the time it landed. */
  latestStatus: { at: number; json: unknown } | undefined;
  uploads = 0;

  /** Applies a storage PUT; returns the status storage would answer (201 on success, 400/404/416 on misuse). */
  put(p: BlobPut): BlobResult {
    const h = (k: string): string | undefined => p.headers[k.toLowerCase()];
    if (!h('x-ms-version')) return { status: 400, error: 'missing x-ms-version' };
    if (p.query.get('comp') === 'page') {
      const blob = this.blobs.get(p.name);
      if (!blob || blob.type !== 'PageBlob') return { status: 404, error: 'page write to a blob that is not a page blob' };
      if (h('x-ms-page-write') !== 'update') return { status: 400, error: 'x-ms-page-write must be update' };
      const m = /^bytes=(\d+)-(\d+)$/.exec(h('x-ms-range') ?? h('range') ?? '');
      if (!m) return { status: 400, error: 'missing or malformed x-ms-range' };
      const start = Number(m[1]);
      const end = Number(m[2]);
      if (start % 512 !== 0 || (end + 1) % 512 !== 0) return { status: 400, error: `range ${start}-${end} not 512-aligned` };
      if (end - start + 1 !== p.body.length) return { status: 400, error: `range length ${end - start + 1} != body ${p.body.length}` };
      if (end - start + 1 > 4 * 1024 * 1024) return { status: 400, error: 'page write over 4 MiB' };
      if (end >= blob.data.length) return { status: 416, error: `range end ${end} beyond blob size ${blob.data.length}` };
      p.body.copy(blob.data, start);
      this.noteStatus(blob);
      return { status: 201 };
    }
    const type = h('x-ms-blob-type');
    if (type === 'BlockBlob') {
      this.blobs.set(p.name, { type, data: Buffer.from(p.body) });
      this.noteStatus(this.blobs.get(p.name)!);
      return { status: 201 };
    }
    if (type === 'PageBlob') {
      const len = Number(h('x-ms-blob-content-length'));
      if (!Number.isInteger(len) || len < 0 || len % 512 !== 0) return { status: 400, error: 'x-ms-blob-content-length must be a multiple of 512' };
      if (p.body.length) return { status: 400, error: 'page blob create must have an empty body' };
      this.blobs.set(p.name, { type, data: Buffer.alloc(len) });
      return { status: 201 };
    }
    return { status: 400, error: `unknown x-ms-blob-type '${type ?? ''}'` };
  }

  /** The stored bytes of a blob, or undefined. */
  get(name: string): Buffer | undefined {
    return this.blobs.get(name)?.data;
  }

  private noteStatus(blob: Blob): void {
    let text = blob.data.toString('utf8');
    if (blob.type === 'PageBlob') text = text.replace(/[\0 ]+$/, '');
    try {
      this.latestStatus = { at: Date.now(), json: JSON.parse(text) };
      this.uploads++;
    } catch {
      // A page blob is complete only after its last page: a partial document is not an error yet.
    }
  }
}
