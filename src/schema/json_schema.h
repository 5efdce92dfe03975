/* JSON Schema to a GBNF grammar (llama2_grammar_parse reads the result).
 * Its own library, built where jansson is installed: the engine reads no
 * JSON. Supported: `type` (a name or a list), `properties`, `required`,
 * `additionalProperties`, `items`, `prefixItems`, `minItems`, `maxItems`,
 * `enum`, `const`, `anyOf`, `oneOf` (as anyOf), `allOf` of objects, `$ref`
 * to `#`, `#/$defs/NAME` and `#/definitions/NAME`, string `minLength`,
 * `maxLength` and the formats date, time, date-time and uuid, integer
 * `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`; annotations
 * (title, description, examples...) are ignored. Anything else is an error
 * naming the keyword and where it is ("/properties/age: unsupported keyword
 * 'multipleOf'"). Objects list their properties in the schema's order;
 * without `additionalProperties`, no others. */
#ifndef LLAMA2_JSON_SCHEMA_H
#define LLAMA2_JSON_SCHEMA_H

#include <stddef.h>

#include <jansson.h>

#include "llama2.h"

/* The GBNF of `schema` into *gbnf (malloc'd, NUL-terminated). Fails with
 * LLAMA2_E_INVALID and a one-line message. */
llama2_status l2_json_schema_to_gbnf(const json_t *schema, char **gbnf, llama2_error *err);

/* The same from JSON text; a syntax error is "line:column: what". */
llama2_status l2_json_schema_text_to_gbnf(const char *text, size_t len, char **gbnf, llama2_error *err);

/* The GBNF of any JSON object ({"type":"json_object"} of OpenAI's API). */
const char *l2_json_object_gbnf(void);

/* Schema text (or, with `text` NULL, any JSON object) to a compiled grammar. */
llama2_status l2_json_schema_grammar(const char *text, size_t len, llama2_grammar **out, llama2_error *err);
/* The same from a parsed schema (NULL: any JSON object). */
llama2_status l2_json_schema_value_grammar(const json_t *schema, llama2_grammar **out, llama2_error *err);

#endif
