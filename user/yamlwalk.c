// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include "yamlwalk.h"

int yw_at(const struct yw *w, const yaml_node_t *n, const char *fmt, ...)
{
	char what[MOAT_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	policy_errf(w->err, "%s:%zu:%zu: %s", w->path,
		    n->start_mark.line + 1, n->start_mark.column + 1, what);
	return -EINVAL;
}

const char *yw_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a single value";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "empty";
	}
}

yaml_node_t *yw_node(const struct yw *w, int index)
{
	return yaml_document_get_node(w->doc, index);
}

int yw_scalar(const struct yw *w, const char *name, const yaml_node_t *n,
	      const char *expected, const char **out)
{
	if (n->type != YAML_SCALAR_NODE)
		return yw_at(w, n, "%s must be %s, not %s", name, expected,
			     yw_kind(n));
	/* libyaml allows "\0" escapes; C strings would silently cut there. */
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return yw_at(w, n, "%s contains a NUL character", name);
	*out = (const char *)n->data.scalar.value;
	return 0;
}

int yw_string(const struct yw *w, const char *name, const yaml_node_t *n,
	      const char *expected, char *out, size_t len)
{
	const char *s;
	int ret;

	ret = yw_scalar(w, name, n, expected, &s);
	if (ret)
		return ret;
	if (!*s || strlen(s) >= len)
		return yw_at(w, n, "%s must be 1 to %zu characters", name,
			     len - 1);
	strcpy(out, s);
	return 0;
}

int yw_choice(const struct yw *w, const char *name, const yaml_node_t *n,
	      const struct yw_choice *choices, int *out)
{
	char words[128] = "";
	const struct yw_choice *ch;
	const char *s;
	int ret;

	ret = yw_scalar(w, name, n, "a word", &s);
	if (ret)
		return ret;
	for (ch = choices; ch->word; ch++) {
		if (!strcmp(s, ch->word)) {
			*out = ch->value;
			return 0;
		}
		strncat(words, ch->word, sizeof(words) - strlen(words) - 1);
		if (ch[1].word)
			strncat(words, ch[2].word ? ", " : " or ",
				sizeof(words) - strlen(words) - 1);
	}
	return yw_at(w, n, "%s must be %s, not '%s'", name, words, s);
}

int yw_bool(const struct yw *w, const char *name, const yaml_node_t *n,
	    int *out)
{
	static const struct yw_choice words[] = {
		{ "true", 1 },
		{ "false", 0 },
		{ NULL, 0 },
	};

	return yw_choice(w, name, n, words, out);
}

int yw_u32(const struct yw *w, const char *name, const yaml_node_t *n,
	   __u32 *out)
{
	unsigned long long v = 0;
	const char *s, *d;
	int ret;

	ret = yw_scalar(w, name, n, "a number", &s);
	if (ret)
		return ret;
	for (d = s; *d && v <= 0xffffffffULL; d++) {
		if (*d < '0' || *d > '9')
			break;
		v = v * 10 + (unsigned long long)(*d - '0');
	}
	if (!*s || *d || v > 0xffffffffULL)
		return yw_at(w, n, "%s must be a whole number from 0 to 4294967295, not '%s'",
			     name, s);
	*out = (__u32)v;
	return 0;
}

int yw_items(struct yw *w, const char *name, yaml_node_t *n, int single_ok,
	     const char *expected,
	     int (*item)(struct yw *w, const char *name, yaml_node_t *n))
{
	yaml_node_item_t *it;
	int ret;

	if (n->type != YAML_SEQUENCE_NODE) {
		if (single_ok)
			return item(w, name, n);
		return yw_at(w, n, "%s must be %s, not %s", name, expected,
			     yw_kind(n));
	}
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		ret = item(w, name, yw_node(w, *it));
		if (ret)
			return ret;
	}
	return 0;
}

static void *field(const struct yw *w)
{
	return (char *)w->obj + w->key->off;
}

int yw_field_u32(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_u32(w, name, val, field(w));
}

int yw_field_bool(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_bool(w, name, val, field(w));
}

int yw_field_choice(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_choice(w, name, val, w->key->choices, field(w));
}

int yw_field_string(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_string(w, name, val, "a single value", field(w),
			 w->key->len);
}

int yw_field_mapping(struct yw *w, const char *name, yaml_node_t *val)
{
	return yw_mapping(w, name, val, w->key->keys);
}

static void key_list(const struct yw_key *keys, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; keys->key && used < len; keys++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s",
					 used ? ", " : "", keys->key);
}

/* A repeated key would silently override the first: refuse it. */
static int check_duplicate(const struct yw *w, yaml_node_pair_t *first,
			   yaml_node_pair_t *pair, const char *key)
{
	yaml_node_t *prev;

	for (; first < pair; first++) {
		prev = yw_node(w, first->key);
		if (prev->type == YAML_SCALAR_NODE &&
		    !strcmp((const char *)prev->data.scalar.value, key))
			return yw_at(w, yw_node(w, pair->key),
				     "duplicate key '%s' (first given on line %zu)",
				     key, prev->start_mark.line + 1);
	}
	return 0;
}

static int load_pair(struct yw *w, const char *name, yaml_node_pair_t *first,
		     yaml_node_pair_t *pair, const struct yw_key *keys)
{
	yaml_node_t *k = yw_node(w, pair->key);
	const struct yw_key *h;
	char full[128], known[160];
	const char *key;
	int ret;

	ret = yw_scalar(w, "a key", k, "a word", &key);
	if (!ret)
		ret = check_duplicate(w, first, pair, key);
	if (ret)
		return ret;
	for (h = keys; h->key; h++)
		if (!strcmp(h->key, key))
			break;
	if (!h->key) {
		key_list(keys, known, sizeof(known));
		return yw_at(w, k, "unknown key '%s'%s%s (known: %s)", key,
			     name ? " in " : "", name ? name : "", known);
	}
	snprintf(full, sizeof(full), "%s%s%s", name ? name : "",
		 name ? "." : "", key);
	w->key = h;
	return h->load(w, full, yw_node(w, pair->value));
}

int yw_mapping(struct yw *w, const char *name, yaml_node_t *map,
	       const struct yw_key *keys)
{
	yaml_node_pair_t *pair, *first;
	int ret;

	if (map->type != YAML_MAPPING_NODE)
		return yw_at(w, map, "%s must be a mapping of settings, not %s",
			     name ? name : "the top level", yw_kind(map));
	first = map->data.mapping.pairs.start;
	for (pair = first; pair < map->data.mapping.pairs.top; pair++) {
		ret = load_pair(w, name, first, pair, keys);
		if (ret)
			return ret;
	}
	return 0;
}

static int syntax_error(const char *path, yaml_parser_t *parser,
			struct moat_err *err)
{
	/*
	 * Unquoted "*.example.com" reads as an alias and "[v6]:443" as a
	 * flow list followed by junk: the usual causes inside rule lists.
	 */
	const char *ctx = parser->context ? parser->context : "";
	const char *hint = strstr(ctx, "alias") || strstr(ctx, "collection") ?
		"; quote rules that start with '*' or '['" : "";

	policy_errf(err, "%s:%zu:%zu: YAML syntax error: %s%s%s%s", path,
		    parser->problem_mark.line + 1,
		    parser->problem_mark.column + 1,
		    parser->problem ? parser->problem : "unknown",
		    parser->context ? " " : "",
		    parser->context ? parser->context : "", hint);
	return -EINVAL;
}

static int load_root(struct yw *w, yaml_parser_t *parser,
		     int (*root)(struct yw *w, yaml_node_t *root))
{
	yaml_document_t next;
	yaml_node_t *n;
	int ret;

	ret = root(w, yaml_document_get_root_node(w->doc));
	if (ret)
		return ret;
	/* A second "---" document would be ignored: refuse it instead. */
	if (!yaml_parser_load(parser, &next))
		return syntax_error(w->path, parser, w->err);
	n = yaml_document_get_root_node(&next);
	if (n)
		ret = yw_at(w, n, "only one YAML document is allowed per file");
	yaml_document_delete(&next);
	return ret;
}

int yw_load(const char *path, FILE *f, void *obj, struct moat_err *err,
	    int (*root)(struct yw *w, yaml_node_t *root))
{
	struct yw w = { .path = path, .err = err, .obj = obj };
	yaml_parser_t parser;
	yaml_document_t doc;
	int ret;

	if (!yaml_parser_initialize(&parser)) {
		policy_errf(err, "%s: out of memory", path);
		return -ENOMEM;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = syntax_error(path, &parser, err);
	} else {
		w.doc = &doc;
		ret = load_root(&w, &parser, root);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return ret;
}
