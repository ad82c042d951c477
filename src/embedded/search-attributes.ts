/**
 * The custom search attributes an embedded Temporal server registers.
 *
 * Why a module of its own: both servers (the dev server and the server on PostgreSQL) check the
 * same attribute list the same way (names and types before spawning, then add the missing ones
 * through the OperatorService and refuse a type conflict), so the two cannot disagree about what
 * "registered" means.
 */
import type { Connection } from '@temporalio/client';
import { EmbeddedStackError } from './errors';

/** Search attribute types as the Temporal CLI spells them in `--search-attribute Name=Type`. */
export type SearchAttributeTypeName = 'Text' | 'Keyword' | 'Int' | 'Double' | 'Bool' | 'Datetime' | 'KeywordList';

/**
 * Proto `IndexedValueType` numbers (temporal/api/enums/v1/common.proto) by CLI type name;
 * stable wire values, used for `AddSearchAttributes` and to read `ListSearchAttributes`.
 */
export const INDEXED_VALUE_TYPES: Readonly<Record<SearchAttributeTypeName, number>> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

/** A search attribute name or type cannot be passed to the server. */
export class InvalidSearchAttributeError extends EmbeddedStackError {
  constructor(
    readonly attribute: string,
    readonly type: string,
  ) {
    super(
      `invalid search attribute ${attribute}=${type}: the name must be an identifier and the type one of ` +
        Object.keys(INDEXED_VALUE_TYPES).join(', '),
    );
  }
}

/** An existing database already registers a search attribute with another type. */
export class SearchAttributeTypeConflictError extends EmbeddedStackError {
  constructor(
    readonly attribute: string,
    readonly wanted: SearchAttributeTypeName,
    readonly existing: string,
  ) {
    super(`search attribute ${attribute} is registered as ${existing} but ${wanted} was requested`);
  }
}

/** Checks names and types (case-insensitive) and returns them with the canonical type names. */
export function normaliseSearchAttributes(input: Readonly<Record<string, string>>): Map<string, SearchAttributeTypeName> {
  const result = new Map<string, SearchAttributeTypeName>();
  const typeNames = Object.keys(INDEXED_VALUE_TYPES) as SearchAttributeTypeName[];
  for (const [name, type] of Object.entries(input)) {
    const canonical = typeNames.find((candidate) => candidate.toLowerCase() === type.toLowerCase());
    if (!canonical || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new InvalidSearchAttributeError(name, type);
    result.set(name, canonical);
  }
  return result;
}

/** Adds the wanted attributes the namespace lacks; throws {@link SearchAttributeTypeConflictError} on a type mismatch. */
export async function reconcileSearchAttributes(
  connection: Connection,
  namespace: string,
  wanted: ReadonlyMap<string, SearchAttributeTypeName>,
): Promise<void> {
  if (wanted.size === 0) return;
  const deadline = (): number => Date.now() + 10_000;
  const { customAttributes } = await connection.withDeadline(deadline(), () =>
    connection.operatorService.listSearchAttributes({ namespace }),
  );
  const missing: Record<string, number> = {};
  for (const [name, type] of wanted) {
    const existing = customAttributes[name];
    if (existing === undefined) {
      missing[name] = INDEXED_VALUE_TYPES[type];
    } else if (existing !== INDEXED_VALUE_TYPES[type]) {
      const existingName = Object.entries(INDEXED_VALUE_TYPES).find(([, value]) => value === existing)?.[0];
      throw new SearchAttributeTypeConflictError(name, type, existingName ?? `type #${existing}`);
    }
  }
  if (Object.keys(missing).length > 0) {
    await connection.withDeadline(deadline(), () =>
      connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing }),
    );
  }
}
