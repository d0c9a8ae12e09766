import { closeSync, openSync, readSync } from "node:fs";
import { Readable } from "node:stream";

/**
 * A streaming tar writer (POSIX ustar, with PAX records for long names, long link targets
 * and sizes beyond ustar's 8 GiB). Entries are written straight into chunks of CHUNK_BYTES,
 * file contents read into them with no buffer in between, and the writer waits whenever the
 * reader is behind, so memory stays bounded.
 *
 * A reader that says when it is done with a chunk (`recycle`, called by the Engine client
 * once the chunk is on the socket) gets the same few chunks back again and again. Fresh
 * memory is what costs: on this machine touching new pages made reading a 25 MB context
 * into new buffers ~75 ms and copying it into coalesced chunks ~75 ms more, where reading it
 * into reused memory takes ~2 ms (bench/). reroll writes its own writer because a build
 * context is thousands of small entries, and a general-purpose stream-per-entry library spent
 * ~250 ms of CPU on 2,000 files.
 */

const BLOCK = 512;
/** A multiple of BLOCK: every entry starts on a block boundary, so a header never spans two chunks. */
const CHUNK_BYTES = 128 * 1024;
/** chunks kept for reuse; when the reader holds more, new ones are made */
const POOL_LIMIT = 8;
const USTAR_MAX_SIZE = 0o77777777777;
/** padding and the archive's end (two zero blocks) are copied from here */
const ZEROS = Buffer.alloc(BLOCK * 2);

export type TarEntryType = "file" | "directory" | "symlink" | "link" | "fifo";

export interface TarHeader {
  /** path inside the archive; a directory's ends with "/" */
  readonly name: string;
  readonly type: TarEntryType;
  readonly mode: number;
  readonly mtime: Date;
  readonly linkname?: string;
  readonly uid?: number;
  readonly gid?: number;
}

/** The archive's reader went away (an aborted or failed request): not a problem of the entries. */
export class TarReaderGoneError extends Error {
  constructor() {
    super("the build context's reader went away");
    this.name = "TarReaderGoneError";
  }
}

/** A file's size when read was not the size its entry was given: the archive would be corrupt. */
export class TarEntryChangedError extends Error {
  constructor(readonly path: string, how: "shrank" | "grew") {
    super(`${path} ${how} while it was being read`);
    this.name = "TarEntryChangedError";
  }
}

const TYPE_FLAGS: Readonly<Record<TarEntryType | "pax", string>> = {
  file: "0",
  link: "1",
  symlink: "2",
  directory: "5",
  fifo: "6",
  pax: "x",
};

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  block.write(value, offset, Math.min(length, Buffer.byteLength(value)), "utf8");
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  // length-1 octal digits, zero-padded, then NUL
  block.write(`${Math.floor(value).toString(8).padStart(length - 1, "0")}\0`, offset, length, "ascii");
}

/** Splits a long path into ustar's prefix (155) and name (100) at a '/', if it fits. */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: "", name };
  for (let i = name.length - 1; i > 0; i -= 1) {
    if (name[i] !== "/") continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return { prefix, name: rest };
  }
  return undefined;
}

/** Writes a ustar header block into `target` at `at`. */
function encodeHeader(target: Buffer, at: number, header: TarHeader, typeFlag: string, split: { prefix: string; name: string }, size: number): void {
  const block = target.subarray(at, at + BLOCK);
  block.fill(0);
  writeString(block, 0, 100, split.name);
  writeOctal(block, 100, 8, header.mode & 0o7777);
  writeOctal(block, 108, 8, header.uid ?? 0);
  writeOctal(block, 116, 8, header.gid ?? 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, Math.floor(header.mtime.getTime() / 1000));
  block.fill(0x20, 148, 156); // checksum field counts as spaces
  block.write(typeFlag, 156, 1, "ascii");
  if (header.linkname !== undefined) writeString(block, 157, 100, header.linkname);
  block.write("ustar\0", 257, 6, "ascii");
  block.write("00", 263, 2, "ascii");
  writeString(block, 345, 155, split.prefix);
  let sum = 0;
  for (let i = 0; i < BLOCK; i += 1) sum += block[i]!;
  block.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
}

function paxRecord(key: string, value: string): string {
  // "<length> <key>=<value>\n", where length counts itself
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

export class TarWriter {
  readonly stream: Readable;
  /** the chunk being filled; `filled` < CHUNK_BYTES between operations */
  private chunk: Buffer;
  private filled = 0;
  private readonly pool: Buffer[] = [];
  /** chunks handed to the reader and not given back yet, by their memory */
  private readonly lent = new Map<ArrayBuffer, Buffer>();
  /** the last push was refused: wait for the reader before writing more */
  private backlogged = false;
  private wantMore: (() => void) | undefined;
  private failed: Error | undefined;
  private ended = false;
  private readonly probe = Buffer.alloc(1);

  constructor() {
    this.chunk = this.take();
    this.stream = new Readable({
      highWaterMark: 2 * CHUNK_BYTES,
      read: () => this.resume(),
    });
    // A reader that goes away (an aborted request) must not leave the writer waiting.
    this.stream.on("close", () => {
      if (!this.ended) {
        this.failed ??= new TarReaderGoneError();
        this.resume();
      }
    });
  }

  /**
   * Gives back a chunk this writer produced once its reader is done with it (written out, not
   * referenced any more): its memory is reused for the chunks that follow. Optional; a chunk
   * never given back is left to the garbage collector.
   */
  readonly recycle = (chunk: Buffer): void => {
    const whole = this.lent.get(chunk.buffer as ArrayBuffer);
    if (whole === undefined) return;
    this.lent.delete(chunk.buffer as ArrayBuffer);
    if (this.pool.length < POOL_LIMIT) this.pool.push(whole);
  };

  private take(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES);
  }

  private resume(): void {
    const resume = this.wantMore;
    this.wantMore = undefined;
    resume?.();
  }

  /** Hands the chunk (partial only at the end) to the reader and starts the next. */
  private pushChunk(): void {
    if (this.filled === 0) return;
    const chunk = this.filled === CHUNK_BYTES ? this.chunk : this.chunk.subarray(0, this.filled);
    this.lent.set(this.chunk.buffer as ArrayBuffer, this.chunk);
    this.chunk = this.take();
    this.filled = 0;
    this.backlogged = !this.stream.push(chunk);
  }

  private pushIfFull(): void {
    if (this.filled === CHUNK_BYTES) this.pushChunk();
  }

  /** Waits while the reader is behind. */
  private async flow(): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    if (!this.backlogged) return;
    await new Promise<void>((resolve) => (this.wantMore = resolve));
    this.backlogged = false;
    if (this.failed !== undefined) throw this.failed;
  }

  private write(source: Buffer): void {
    let offset = 0;
    while (offset < source.length) {
      const n = Math.min(source.length - offset, CHUNK_BYTES - this.filled);
      source.copy(this.chunk, this.filled, offset, offset + n);
      this.filled += n;
      offset += n;
      this.pushIfFull();
    }
  }

  /** Zeros up to the next block boundary after `size` bytes of content. */
  private pad(size: number): void {
    const rest = size % BLOCK;
    if (rest !== 0) this.write(ZEROS.subarray(0, BLOCK - rest));
  }

  private header(header: TarHeader, typeFlag: string, split: { prefix: string; name: string }, size: number): void {
    // entries start on block boundaries and CHUNK_BYTES is a multiple of BLOCK: a whole block fits
    encodeHeader(this.chunk, this.filled, header, typeFlag, split, size);
    this.filled += BLOCK;
    this.pushIfFull();
  }

  private writeHeader(header: TarHeader, size: number): void {
    if (this.failed !== undefined) throw this.failed;
    const split = splitUstarName(header.name);
    const records: string[] = [];
    if (split === undefined) records.push(paxRecord("path", header.name));
    if (header.linkname !== undefined && Buffer.byteLength(header.linkname) > 100) records.push(paxRecord("linkpath", header.linkname));
    if (size > USTAR_MAX_SIZE) records.push(paxRecord("size", String(size)));
    if (records.length > 0) {
      const body = Buffer.from(records.join(""), "utf8");
      this.header({ name: "PaxHeader", type: "file", mode: 0o644, mtime: header.mtime }, TYPE_FLAGS.pax, { prefix: "", name: "PaxHeader" }, body.length);
      this.write(body);
      this.pad(body.length);
    }
    this.header(header, TYPE_FLAGS[header.type], split ?? { prefix: "", name: header.name.slice(-100) }, size > USTAR_MAX_SIZE ? 0 : size);
  }

  /** Adds an entry whose content (for a file) is in memory. */
  async add(header: TarHeader, body?: Buffer | string): Promise<void> {
    const content = body === undefined ? undefined : typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const size = header.type === "file" ? (content?.length ?? 0) : 0;
    this.writeHeader(header, size);
    if (content !== undefined && size > 0) {
      this.write(content);
      this.pad(size);
    }
    await this.flow();
  }

  /**
   * Adds a file entry of `size` bytes read from the file at `path`, straight into the
   * archive's chunks. A file that is shorter or longer than `size` when read fails the entry
   * rather than writing a corrupt archive; a file that cannot be opened fails before any of
   * its entry is written.
   */
  async addFile(header: TarHeader, path: string, size: number): Promise<void> {
    const fd = openSync(path, "r");
    try {
      this.writeHeader(header, size);
      let done = 0;
      while (done < size) {
        const n = readSync(fd, this.chunk, this.filled, Math.min(size - done, CHUNK_BYTES - this.filled), done);
        if (n === 0) throw new TarEntryChangedError(path, "shrank");
        this.filled += n;
        done += n;
        if (this.filled === CHUNK_BYTES) {
          this.pushChunk();
          await this.flow();
        }
      }
      if (readSync(fd, this.probe, 0, 1, size) !== 0) throw new TarEntryChangedError(path, "grew");
      this.pad(size);
    } finally {
      closeSync(fd);
    }
    await this.flow();
  }

  /** Ends the archive (two zero blocks) and the stream. */
  async finish(): Promise<void> {
    if (this.failed !== undefined) throw this.failed;
    this.write(ZEROS);
    this.pushChunk();
    this.ended = true;
    this.stream.push(null);
  }

  /** Fails the stream: its reader sees `error`. */
  destroy(error: Error): void {
    this.failed = error;
    this.stream.destroy(error);
    this.resume();
  }
}
