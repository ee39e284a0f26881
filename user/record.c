// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "policy.h"
#include "record.h"

static void record_path(char *buf, size_t len, __u64 id)
{
	snprintf(buf, len, "%s/%llu.json", MOAT_RECORD_DIR, (unsigned long long)id);
}

static json_object *texts(const struct moat_rule *r, size_t from, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = from; i < n; i++)
		json_object_array_add(a, json_object_new_string(r[i].text));
	return a;
}

int record_write(__u64 id, const char *rel, const struct moat_policy_spec *spec)
{
	char p[PATH_MAX], tmp[PATH_MAX + 8], real[PATH_MAX];
	json_object *o = json_object_new_object();
	/* policy_init() says "command line" until a file is loaded */
	bool file = strcmp(spec->source, "command line") != 0;
	int err = 0;

	/* reload runs from anywhere: keep the absolute path */
	if (file && !realpath(spec->source, real))
		snprintf(real, sizeof(real), "%s", spec->source);

	if (mkdir(MOAT_RECORD_DIR, 0700) && errno != EEXIST)
		return -errno;
	json_object_object_add(o, "cgroup", json_object_new_string(rel));
	json_object_object_add(o, "policy", json_object_new_string(spec->name));
	json_object_object_add(o, "file", file ? json_object_new_string(real) : NULL);
	json_object_object_add(o, "allow", texts(spec->allow, spec->n_allow_file,
						 spec->n_allow));
	json_object_object_add(o, "deny", texts(spec->deny, spec->n_deny_file,
						spec->n_deny));
	record_path(p, sizeof(p), id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	/* write and rename: a reader sees the old record or the new one */
	if (json_object_to_file_ext(tmp, o, JSON_C_TO_STRING_PLAIN) ||
	    rename(tmp, p))
		err = -errno ?: -EIO;
	json_object_put(o);
	return err;
}

void record_remove(__u64 id)
{
	char p[PATH_MAX];

	record_path(p, sizeof(p), id);
	unlink(p);
}

json_object *record_read(__u64 id)
{
	char p[PATH_MAX];

	record_path(p, sizeof(p), id);
	return json_object_from_file(p);
}

static int add_rules(struct moat_policy_spec *spec, json_object *rec,
		     const char *key, int deny, struct moat_err *err)
{
	json_object *a;

	if (!json_object_object_get_ex(rec, key, &a) ||
	    !json_object_is_type(a, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		const char *t = json_object_get_string(json_object_array_get_idx(a, i));
		int ret = policy_add_rule(spec, deny, t ?: "", err);

		if (ret)
			return ret;
	}
	return 0;
}

int record_spec(json_object *rec, struct moat_policy_spec *spec,
		const char *policy_dir, struct moat_err *err)
{
	json_object *x;
	int ret;

	policy_init(spec);
	if (!json_object_object_get_ex(rec, "file", &x) || !json_object_get_string(x)) {
		snprintf(err->msg, sizeof(err->msg),
			 "its policy came from the command line only: nothing to reload");
		return -ENOENT;
	}
	ret = policy_load(spec, json_object_get_string(x), policy_dir, err);
	if (!ret)
		ret = add_rules(spec, rec, "allow", 0, err);
	if (!ret)
		ret = add_rules(spec, rec, "deny", 1, err);
	return ret;
}
