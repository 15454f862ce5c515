import { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * Validates a connector's config with its zod schema. The error names every bad field
 * ("port: expected number, received string") because the user fixes a file, not a stack trace.
 */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(`invalid config: ${describeIssues(result.error)}`, { cause: result.error });
}

export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/** The JSON Schema shown in SPEC, derived from the same zod schema that validates the config. */
export function connectionSpecification(schema: z.ZodType): Record<string, unknown> {
  // io "input": fields with defaults are optional for the user. draft-7 is what Airbyte's
  // tooling reads.
  return z.toJSONSchema(schema, { io: 'input', target: 'draft-7' });
}
