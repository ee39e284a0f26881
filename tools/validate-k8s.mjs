#!/usr/bin/env node
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// tools/validate-k8s.mjs FILE.yaml...   (make k8s-validate)
//
// Validates every object of every YAML document offline against the
// Kubernetes API schemas of the npm package kubernetes-models (JSON
// schemas generated from the API's OpenAPI spec; `validate()` throws on a
// missing required field, a wrong type or a bad enum value). Its schemas
// are not strict: an unknown (misspelt) field passes, as with `kubectl
// apply --validate=false`; only an API server's strict field validation
// would catch that.
// Then checks what the schemas cannot: a container's `sh -c` script
// parses (sh -n), every volumeMount names a volume of its pod, no ConfigMap volume is mounted with subPath (those mounts
// are never updated), the DaemonSet's selector matches its pod labels.
// Before the files, negative controls: objects with a wrong type, a
// missing required field, a shell syntax error and a subPath ConfigMap
// mount must each be
// rejected, or the run fails (a validator that accepts everything proves
// nothing).
//
// Modules come from K8S_VALIDATE_DIR (default /tmp/k8s-validate), where
// `npm install kubernetes-models yaml` was run; never from the repository.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import path from "node:path";

const dir = process.env.K8S_VALIDATE_DIR || "/tmp/k8s-validate";
const require = createRequire(path.join(path.resolve(dir), "package.json"));
let YAML;
try {
  YAML = require("yaml");
  require("kubernetes-models/v1");
} catch (e) {
  console.error(`validate-k8s: cannot load kubernetes-models and yaml from ${dir} ` +
    `(mkdir -p ${dir} && cd ${dir} && npm install kubernetes-models yaml): ${e.message}`);
  process.exit(2);
}
const version = require("kubernetes-models/package.json").version;

function modelOf(obj) {
  const api = obj.apiVersion, kind = obj.kind;
  if (typeof api !== "string" || typeof kind !== "string")
    throw new Error("apiVersion and kind must be strings");
  let mod;
  try {
    mod = require(`kubernetes-models/${api}`);
  } catch {
    throw new Error(`no schema for apiVersion ${api}`);
  }
  if (typeof mod[kind] !== "function")
    throw new Error(`no kind ${kind} in ${api}`);
  return new mod[kind](obj);
}

function podSpecOf(obj) {
  if (obj.kind === "Pod") return obj.spec;
  return obj.spec?.template?.spec;
}

// What the schemas cannot see.
function extraChecks(obj) {
  const errs = [];
  const spec = podSpecOf(obj);
  if (spec) {
    const vols = new Map((spec.volumes || []).map((v) => [v.name, v]));
    for (const c of [...(spec.initContainers || []), ...(spec.containers || [])]) {
      const cmd = c.command || [];
      const i = cmd.findIndex((a) => /^-[a-z]*c$/.test(a));
      if (cmd[0] === "sh" && i > 0 && typeof cmd[i + 1] === "string") {
        const r = spawnSync("sh", ["-n", "-c", cmd[i + 1]], { encoding: "utf8" });
        if (r.status !== 0)
          errs.push(`container ${c.name}: sh -n: ${(r.stderr || "").trim()}`);
      }
      for (const m of c.volumeMounts || []) {
        const v = vols.get(m.name);
        if (!v) errs.push(`container ${c.name}: volumeMount ${m.name} names no volume`);
        else if (v.configMap && m.subPath)
          errs.push(`container ${c.name}: ConfigMap volume ${m.name} mounted with subPath (never updated)`);
      }
    }
  }
  if (obj.kind === "DaemonSet") {
    const sel = obj.spec?.selector?.matchLabels || {};
    const labels = obj.spec?.template?.metadata?.labels || {};
    for (const [k, v] of Object.entries(sel))
      if (labels[k] !== v) errs.push(`selector ${k}=${v} does not match the pod template's labels`);
  }
  return errs;
}

function check(obj) {
  modelOf(obj).validate();
  const errs = extraChecks(obj);
  if (errs.length) throw new Error(errs.join("; "));
}

// Negative controls: each must be rejected.
const controls = [
  ["wrong type", { apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: "x" }, handler: 7 }],
  ["missing required field", { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "x" },
    spec: { template: { spec: { containers: [{ name: "a" }] } } } }],
  ["shell syntax error", { apiVersion: "v1", kind: "Pod", metadata: { name: "x" },
    spec: { containers: [{ name: "a", image: "i", command: ["sh", "-c", "if true; then echo"] }] } }],
  ["subPath ConfigMap mount", { apiVersion: "v1", kind: "Pod", metadata: { name: "x" },
    spec: { containers: [{ name: "a", image: "i", volumeMounts: [{ name: "c", mountPath: "/c", subPath: "k" }] }],
      volumes: [{ name: "c", configMap: { name: "c" } }] } }],
];
let bad = 0;
for (const [what, obj] of controls) {
  try {
    check(obj);
    console.log(`FAIL control (${what}): accepted`);
    bad++;
  } catch {
    console.log(`ok   control (${what}): rejected`);
  }
}

let count = 0;
for (const file of process.argv.slice(2)) {
  let docs;
  try {
    docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
  } catch (e) {
    console.log(`FAIL ${file}: ${e.message}`);
    bad++;
    continue;
  }
  for (const doc of docs) {
    if (doc.errors.length) {
      console.log(`FAIL ${file}: YAML: ${doc.errors[0].message}`);
      bad++;
      continue;
    }
    const obj = doc.toJSON();
    if (obj === null) continue;
    const name = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    try {
      check(obj);
      console.log(`ok   ${name} (${obj.apiVersion})`);
      count++;
    } catch (e) {
      console.log(`FAIL ${name}: ${e.message}`);
      bad++;
    }
  }
}
console.log(`validate-k8s: ${count} object(s) valid against kubernetes-models ${version}, ` +
  `${controls.length} negative controls, ${bad} failure(s)`);
process.exit(bad ? 1 : 0);
