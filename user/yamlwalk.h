/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one YAML walker of the policy files and of moat.yaml: libyaml's
 * document API, then a table of handlers per mapping. Every error names
 * file:line:column (1-based) of the node it is about and the key's dotted
 * name, so a user can go straight to it.
 */
#ifndef MOAT_YAMLWALK_H
#define MOAT_YAMLWALK_H

#include <stddef.h>
#include <stdio.h>
#include <linux/types.h>
#include <yaml.h>
#include "err.h"

struct yw {
	const char *path;
	yaml_document_t *doc;
	struct moat_err *err;
	void *obj;		/* what the handlers fill in */
	const struct yw_key *key;	/* the entry being loaded */
};

/* One accepted word of an enumerated setting; a NULL word ends a list. */
struct yw_choice {
	const char *word;
	int value;
};

/*
 * A handler for one key; NAME is its dotted name ("dns.min_ttl"). The
 * yw_field_* handlers fill the field at OFF in the walk's object, as the
 * rest of the entry says; w->key is the entry being loaded.
 */
struct yw_key {
	const char *key;
	int (*load)(struct yw *w, const char *name, yaml_node_t *val);
	size_t off;
	const struct yw_choice *choices;	/* yw_field_choice */
	size_t len;				/* yw_field_string */
	const struct yw_key *keys;		/* yw_field_mapping */
};

int yw_field_u32(struct yw *w, const char *name, yaml_node_t *val);
int yw_field_bool(struct yw *w, const char *name, yaml_node_t *val);
int yw_field_choice(struct yw *w, const char *name, yaml_node_t *val);
int yw_field_string(struct yw *w, const char *name, yaml_node_t *val);
int yw_field_mapping(struct yw *w, const char *name, yaml_node_t *val);

#define YW_U32(k, type, f)	{ k, yw_field_u32, offsetof(type, f), NULL, 0, NULL }
/* an int (or an enum of int's size) */
#define YW_BOOL(k, type, f)	{ k, yw_field_bool, offsetof(type, f), NULL, 0, NULL }
#define YW_CHOICE(k, type, f, c) { k, yw_field_choice, offsetof(type, f), c, 0, NULL }
#define YW_STRING(k, type, f)	{ k, yw_field_string, offsetof(type, f), NULL, \
				  sizeof(((type *)0)->f), NULL }
#define YW_MAPPING(k, keys)	{ k, yw_field_mapping, 0, NULL, 0, keys }
#define YW_LOAD(k, fn)		{ k, fn, 0, NULL, 0, NULL }
#define YW_END			{ NULL, NULL, 0, NULL, 0, NULL }

/* Fills W's error with "path:line:col: ..." at N; returns -EINVAL. */
int yw_at(const struct yw *w, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "a single value", "a list", "a mapping" or "empty", for messages. */
const char *yw_kind(const yaml_node_t *n);
yaml_node_t *yw_node(const struct yw *w, int index);
/* N's text, or an error naming what was EXPECTED instead. */
int yw_scalar(const struct yw *w, const char *name, const yaml_node_t *n,
	      const char *expected, const char **out);
/* N's text copied into OUT: 1 to LEN - 1 characters. */
int yw_string(const struct yw *w, const char *name, const yaml_node_t *n,
	      const char *expected, char *out, size_t len);
int yw_choice(const struct yw *w, const char *name, const yaml_node_t *n,
	      const struct yw_choice *choices, int *out);
/* true or false, as 1 or 0. */
int yw_bool(const struct yw *w, const char *name, const yaml_node_t *n,
	    int *out);
/* A non-negative decimal that fits __u32: no sign, no hex, no exponent. */
int yw_u32(const struct yw *w, const char *name, const yaml_node_t *n,
	   __u32 *out);
/*
 * Calls ITEM for every entry of the list N; a single value counts as a
 * list of one where SINGLE_OK, else it is an error naming EXPECTED.
 */
int yw_items(struct yw *w, const char *name, yaml_node_t *n, int single_ok,
	     const char *expected,
	     int (*item)(struct yw *w, const char *name, yaml_node_t *n));
/*
 * Walks the mapping MAP with the handlers KEYS (NULL key ends it); NAME
 * is NULL at the top level. Unknown and repeated keys are errors.
 */
int yw_mapping(struct yw *w, const char *name, yaml_node_t *map,
	       const struct yw_key *keys);
/*
 * Parses F (named PATH) and calls ROOT with the first document's root
 * node (NULL for an empty file); a second document is an error.
 */
int yw_load(const char *path, FILE *f, void *obj, struct moat_err *err,
	    int (*root)(struct yw *w, yaml_node_t *root));

#endif
