import { CatdogError } from '../../errors.js';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export type JsonObject = { [key: string]: Json };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A model file whose structure is not what its format promises: the user's file is at fault, not catdog. */
export function invalidModel(message: string): CatdogError {
  return new CatdogError('invalid_model', message, 400);
}

export function objectAt(value: Json | undefined, what: string): JsonObject {
  if (!isJsonObject(value)) throw invalidModel(`${what} is not a JSON object`);
  return value;
}

export function arrayAt(value: Json | undefined, what: string): Json[] {
  if (!Array.isArray(value)) throw invalidModel(`${what} is not a JSON array`);
  return value;
}

export function stringAt(value: Json | undefined, what: string): string {
  if (typeof value !== 'string') throw invalidModel(`${what} is not a string`);
  return value;
}

export function parseJson(text: string, what: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (error) {
    throw invalidModel(`${what} is not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
}
