import { z } from 'zod';
import { CatdogError } from '../../errors.js';

/** The cell a stored document was read from or is written to. */
export interface DocumentLocation {
  table: string;
  column: string;
  rowId: string | number;
}

/** A JSON column whose content does not fit the schema of its document: a hand-edited row, or a bug that wrote it. */
export class StoredDocumentError extends CatdogError {
  constructor(document: string, { table, column, rowId }: DocumentLocation, problem: string) {
    super(
      'stored_document_invalid',
      `${table}.${column} of row ${rowId} does not hold valid ${document}: ${problem}. Correct or delete the row, or run the catdog version that wrote it.`,
      500,
      { table, column, rowId, document, problem },
    );
    this.name = 'StoredDocumentError';
  }
}

/**
 * The version of a document is stored inside its JSON, under this key. A row then says which shape it was written
 * in without a version column beside every JSON column (a migration on three dialects each time), and without
 * guessing from the shape (a newer document often also fits an older schema). Documents are JSON objects, and no
 * field a document names starts with `$`. Rows written before versioning have no marker: they are version 1.
 */
const VERSION_KEY = '$version';

type Parsed<T> = { success: true; data: T } | { success: false; problem: string };

/**
 * A JSON document stored in a column: one zod schema per version, the newest being the shape the code uses. Reading
 * parses a row with the schema of the version it was written in, then upgrades it version by version, each step
 * checked by the next schema; writing stores the newest version, checked, with its version marker.
 */
export interface StoredDocument<T> {
  /** What the document is, for messages: "training parameters". */
  readonly name: string;
  /** The newest version, the one `write` stores. */
  readonly version: number;
  /** The document as version `version + 1`, made from this one's newest version by `upgrade`. */
  next<Schema extends z.ZodType>(schema: Schema, upgrade: (previous: T) => z.input<Schema>): StoredDocument<z.output<Schema>>;
  read(text: string, location: DocumentLocation): T;
  write(value: T, location: DocumentLocation): string;
}

export function storedDocument<Schema extends z.ZodType>(name: string, first: Schema): StoredDocument<z.output<Schema>> {
  const check = (value: unknown) => checked(first, value);
  return documentVersion<z.output<Schema>>(name, 1, check, (_version, value) => check(value));
}

/** Each issue at its path; a document of several forms (a union) lists why it fits none of them. */
function describeIssues(issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[] = []): string {
  return issues
    .map((issue) => {
      const path = [...prefix, ...issue.path];
      const where = path.length > 0 ? path.map(String).join('.') : 'the document';
      if (issue.code !== 'invalid_union' || issue.errors.length === 0) return `${where}: ${issue.message}`;
      const forms = issue.errors.map((formIssues, index) => `(${index + 1}) ${describeIssues(formIssues, path)}`);
      return `${where} fits none of its forms: ${forms.join(' ')}`;
    })
    .join('; ');
}

function checked<Schema extends z.ZodType>(schema: Schema, value: unknown): Parsed<z.output<Schema>> {
  const parsed = schema.safeParse(value);
  return parsed.success ? { success: true, data: parsed.data } : { success: false, problem: describeIssues(parsed.error.issues) };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * `check` parses the newest version; `parseFrom(version, value)` parses a document stored as `version` (1..newest)
 * and upgrades it to the newest.
 */
function documentVersion<T>(name: string, newest: number, check: (value: unknown) => Parsed<T>, parseFrom: (version: number, value: unknown) => Parsed<T>): StoredDocument<T> {
  return {
    name,
    version: newest,

    next<Schema extends z.ZodType>(nextSchema: Schema, upgrade: (previous: T) => z.input<Schema>) {
      const checkNext = (value: unknown) => checked(nextSchema, value);
      return documentVersion<z.output<Schema>>(name, newest + 1, checkNext, (version, value) => {
        if (version === newest + 1) return checkNext(value);
        const previous = parseFrom(version, value);
        if (!previous.success) return previous;
        const upgraded = checkNext(upgrade(previous.data));
        return upgraded.success ? upgraded : { success: false, problem: `upgrading it from version ${version} to ${newest + 1}: ${upgraded.problem}` };
      });
    },

    read(text, location) {
      let stored: unknown;
      try {
        stored = JSON.parse(text);
      } catch (error) {
        throw new StoredDocumentError(name, location, `not JSON (${(error as Error).message})`);
      }
      if (!isObject(stored)) throw new StoredDocumentError(name, location, 'not a JSON object');
      const { [VERSION_KEY]: marker = 1, ...document } = stored;
      if (typeof marker !== 'number' || !Number.isInteger(marker) || marker < 1) {
        throw new StoredDocumentError(name, location, `its ${VERSION_KEY} ${JSON.stringify(marker)} is no version number`);
      }
      if (marker > newest) {
        throw new StoredDocumentError(name, location, `it is version ${marker}, written by a newer catdog; this one reads versions up to ${newest}`);
      }
      const parsed = parseFrom(marker, document);
      if (!parsed.success) throw new StoredDocumentError(name, location, parsed.problem);
      return parsed.data;
    },

    write(value, location) {
      const parsed = check(value);
      if (!parsed.success) throw new StoredDocumentError(name, location, `refused to store it: ${parsed.problem}`);
      return JSON.stringify({ [VERSION_KEY]: newest, ...parsed.data });
    },
  };
}
