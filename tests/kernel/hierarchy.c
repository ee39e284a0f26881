// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Cgroup trees: a policy covers every descendant, including ones created
 * after the attach; the deepest attached cgroup's policy wins; counters
 * count each attempt once, on the cgroup whose policy judged it.
 */
#include "harness.h"

KTEST(hierarchy, parent_covers_later_children)
{
	const char *p = cg_make("p");
	const char *c, *gc;
	struct cg_status s0, s1, s2, s3;
	struct status_list l;

	moat_ok("attach %s --allow tcp://" W4_A ":80", p);
	/* Created after the attach. */
	c = cg_make("p/c");
	gc = cg_make("p/c/g");

	s0 = status_of(p);
	expect_allowed(c, "tcp", W4_A, 80);
	s1 = status_of(p);
	cr_assert_eq(s1.allowed, s0.allowed + 1, "allowed %llu -> %llu",
		     s0.allowed, s1.allowed);
	cr_assert_eq(s1.denied, s0.denied, "denied %llu -> %llu", s0.denied,
		     s1.denied);

	expect_blocked(c, "tcp", W4_B, 80);
	s2 = status_of(p);
	cr_assert_eq(s2.denied, s1.denied + 1, "denied %llu -> %llu",
		     s1.denied, s2.denied);
	cr_assert_eq(s2.allowed, s1.allowed, "allowed %llu -> %llu",
		     s1.allowed, s2.allowed);

	/* 8080: the rules decide (port 53 would be DNS capture's) */
	expect_blocked(gc, "udp", W4_B, 8080);
	expect_allowed(gc, "tcp", W4_A, 80);
	s3 = status_of(p);
	cr_assert_eq(s3.denied, s2.denied + 1, "denied %llu -> %llu",
		     s2.denied, s3.denied);
	cr_assert_eq(s3.allowed, s2.allowed + 1, "allowed %llu -> %llu",
		     s2.allowed, s3.allowed);

	/* The children were never attached themselves. */
	status_read(&l, NULL);
	cr_assert_null(status_find(&l, cg_rel(c)));
	cr_assert_null(status_find(&l, cg_rel(gc)));
	cr_assert_eq(l.n, 1, "status lists %zu cgroups, want 1", l.n);
}

KTEST(hierarchy, child_policy_overrides_parent)
{
	const char *p = cg_make("p");
	const char *c = cg_make("p/c");
	struct cg_status sp0, sc0, sp1, sc1;

	moat_ok("attach %s --allow tcp://" W4_A ":80", p);
	moat_ok("attach %s --allow tcp://" W4_B ":80", c);

	sp0 = status_of(p);
	sc0 = status_of(c);
	expect_allowed(c, "tcp", W4_B, 80);
	expect_blocked(c, "tcp", W4_A, 80);
	sp1 = status_of(p);
	sc1 = status_of(c);
	/* Counted once, on the child whose policy judged. */
	cr_assert_eq(sc1.allowed, sc0.allowed + 1);
	cr_assert_eq(sc1.denied, sc0.denied + 1);
	cr_assert_eq(sp1.allowed, sp0.allowed, "parent counted too");
	cr_assert_eq(sp1.denied, sp0.denied, "parent counted too");

	/* A process in the parent itself keeps the parent's policy. */
	expect_allowed(p, "tcp", W4_A, 80);
	expect_blocked(p, "tcp", W4_B, 80);
}

/* Detaching a child hands its subtree back to the parent's policy. */
KTEST(hierarchy, child_detach_falls_back_to_parent)
{
	const char *p = cg_make("p");
	const char *c = cg_make("p/c");
	struct status_list l;

	moat_ok("attach %s --allow tcp://" W4_A ":80", p);
	moat_ok("attach %s --allow tcp://" W4_B ":80", c);
	expect_allowed(c, "tcp", W4_B, 80);
	expect_blocked(c, "tcp", W4_A, 80);

	moat_ok("detach %s", c);
	status_read(&l, NULL);
	cr_assert_null(status_find(&l, cg_rel(c)), "detached child listed");
	cr_assert_not_null(status_find(&l, cg_rel(p)), "parent vanished");

	expect_allowed(c, "tcp", W4_A, 80);
	expect_blocked(c, "tcp", W4_B, 80);
}

/* Detaching the parent too leaves the subtree unenforced. */
KTEST(hierarchy, detach_all_levels)
{
	const char *p = cg_make("p");
	const char *c = cg_make("p/c");

	moat_ok("attach %s --allow tcp://" W4_A ":80", p);
	moat_ok("attach %s --allow tcp://" W4_A ":80", c);
	expect_blocked(c, "tcp", W4_B, 80);
	moat_ok("detach %s", p);
	/* The child's own policy still holds. */
	expect_blocked(c, "tcp", W4_B, 80);
	expect_allowed(p, "tcp", W4_B, 80);
	moat_ok("detach %s", c);
	expect_allowed(c, "tcp", W4_B, 80);
}
