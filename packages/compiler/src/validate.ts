import type { ErrorObject } from 'ajv/dist/2020.js';
import type { DiagnosticBag, DiagnosticCode } from './diagnostics.js';
import { SUPPORTED_API_VERSIONS, VERSIONS, type Kind, type SchemaValidator } from './kinds.js';
import type { LoadedDocument, PathSegment } from './load.js';

/** A document that passed its kind's schema, converted to the hub version. */
export interface ValidatedObject {
  readonly kind: Kind;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: Record<string, unknown>;
  readonly document: LoadedDocument;
}

function validatorFor(apiVersion: string, kind: Kind): SchemaValidator {
  return VERSIONS[apiVersion]!.validators[kind];
}

function pointerToPath(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

function describePath(path: readonly PathSegment[]): string {
  let text = '';
  for (const segment of path) text += typeof segment === 'number' ? `[${segment}]` : text === '' ? segment : `.${segment}`;
  return text === '' ? 'the document' : text;
}

function translate(error: ErrorObject): { code: DiagnosticCode; path: PathSegment[]; key: boolean; message: string; hint?: string } {
  const path = pointerToPath(error.instancePath);
  const where = describePath(path);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { code: 'SCHEMA_REQUIRED', path, key: false, message: `${where} needs the field "${String(params.missingProperty)}"` };
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      return {
        code: 'SCHEMA_UNKNOWN_FIELD',
        path: [...path, field],
        key: true,
        message: `${where} has no field "${field}"`,
        hint: 'check the spelling; the JSON Schemas in schemas/ list every field',
      };
    }
    case 'type':
      return { code: 'SCHEMA_TYPE', path, key: false, message: `${where} must be ${String(params.type)}` };
    case 'enum':
      return {
        code: 'SCHEMA_ENUM',
        path,
        key: false,
        message: `${where} must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'const':
      return { code: 'SCHEMA_ENUM', path, key: false, message: `${where} must be ${JSON.stringify(params.allowedValue)}` };
    case 'pattern':
      return { code: 'SCHEMA_PATTERN', path, key: false, message: `${where} must match ${String(params.pattern)}` };
    case 'propertyNames':
      return { code: 'SCHEMA_PATTERN', path: [...path, String(params.propertyName)], key: true, message: `${where} has an invalid key "${String(params.propertyName)}"` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'minItems':
    case 'maxItems':
    case 'minLength':
    case 'maxLength':
      return { code: 'SCHEMA_RANGE', path, key: false, message: `${where} ${error.message ?? 'is out of range'}` };
    default:
      return { code: 'SCHEMA_INVALID', path, key: false, message: `${where} ${error.message ?? 'is invalid'}` };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function validateDocuments(documents: readonly LoadedDocument[], bag: DiagnosticBag): ValidatedObject[] {
  const result: ValidatedObject[] = [];
  for (const document of documents) {
    const value = document.value;
    if (!isRecord(value)) {
      bag.add('DOCUMENT_NOT_OBJECT', document.locator.locate([]), 'a document must be a mapping with apiVersion, kind, metadata and spec');
      continue;
    }
    const apiVersion = value.apiVersion;
    const version = typeof apiVersion === 'string' ? VERSIONS[apiVersion] : undefined;
    if (!version) {
      bag.add(
        'UNKNOWN_API_VERSION',
        document.locator.locate(apiVersion === undefined ? [] : ['apiVersion']),
        apiVersion === undefined ? 'the document has no apiVersion' : `apiVersion ${JSON.stringify(apiVersion)} is not supported`,
        { hint: `supported: ${SUPPORTED_API_VERSIONS.join(', ')}` },
      );
      continue;
    }
    const kind = value.kind;
    const kinds = Object.keys(version.schemas).sort();
    if (typeof kind !== 'string' || !kinds.includes(kind)) {
      bag.add(
        'UNKNOWN_KIND',
        document.locator.locate(kind === undefined ? [] : ['kind']),
        kind === undefined ? 'the document has no kind' : `kind ${JSON.stringify(kind)} is not supported in ${String(apiVersion)}`,
        { hint: `supported kinds: ${kinds.join(', ')}` },
      );
      continue;
    }
    const validate = validatorFor(apiVersion as string, kind as Kind);
    const object = isRecord(value.metadata) && isRecord(value.metadata.name) ? undefined : `${kind}/${String((value.metadata as Record<string, unknown> | undefined)?.name ?? '?')}`;
    if (!validate(value)) {
      for (const error of validate.errors ?? []) {
        // `if`/anyOf wrappers repeat what their branches already said.
        if (error.keyword === 'if' || error.keyword === 'anyOf' || error.keyword === 'oneOf') continue;
        const t = translate(error);
        bag.add(t.code, t.key ? document.locator.locateKey(t.path) : document.locator.locate(t.path), t.message, {
          ...(t.hint !== undefined ? { hint: t.hint } : {}),
          ...(object !== undefined ? { object } : {}),
        });
      }
      continue;
    }
    const hub = version.toHub(kind as Kind, value);
    const metadata = hub.metadata as { name: string; labels?: Record<string, string> };
    result.push({
      kind: kind as Kind,
      name: metadata.name,
      labels: metadata.labels ?? {},
      spec: (hub.spec as Record<string, unknown> | undefined) ?? {},
      document,
    });
  }
  return result;
}
