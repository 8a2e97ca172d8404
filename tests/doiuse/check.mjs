// Checks HTML emails against the Can I email database with doiuse-email
// (the version in package-lock.json), for tests/client_support.rs.
//
//   node tests/doiuse/check.mjs CLIENTS FILE...
//
// CLIENTS is doiuse-email's comma-separated list of client globs, as its
// CLI's --email-clients takes. Prints one JSON object: for each FILE its
// {errors, warnings, notes}, each message once, in doiuse-email's words.
//
// doiuse-email's CLI does the same for the clients it lists. This script
// uses its own checker (`DoIUseEmail`) the same way, and adds two things
// the 0.4.1 release lacks:
// - Outlook on the web, `outlook.outlook-com`: the database has it for every
//   feature, the tool's list of clients does not.
// - What is inside `@media` blocks: the tool checks that `@media` is used,
//   never the properties and selectors in it nor the media features
//   (`@media (prefers-color-scheme)`, …), so dark mode went unchecked.
import fs from "node:fs";

import { DoIUseEmail } from "doiuse-email";
// Files of the same package: the same module instances the checker uses.
import { emailClientsList } from "./node_modules/doiuse-email/utils/email-clients.js";
import { getCSSFeatures } from "./node_modules/doiuse-email/utils/features.js";
import { parseHtml } from "./node_modules/doiuse-email/utils/parse-html.js";

const [clients, ...files] = process.argv.slice(2);
if (!clients || files.length === 0) {
  process.stderr.write("usage: check.mjs CLIENTS FILE...\n");
  process.exit(2);
}
if (!emailClientsList.includes("outlook.outlook-com")) emailClientsList.push("outlook.outlook-com");

// Media features by name, e.g. "prefers-color-scheme" -> "@media (prefers-color-scheme)".
const mediaFeatures = new Map();
for (const title of Object.keys(getCSSFeatures())) {
  if (!title.startsWith("@media (")) continue;
  for (const m of title.matchAll(/\(([a-z-]+)\)/g)) mediaFeatures.set(m[1], title);
}

/// The rules inside `@media` blocks (nested ones too), checked as the
/// checker checks top-level rules, and the media features they test.
function checkMedia(checker, rules) {
  for (const rule of rules ?? []) {
    if (rule.type !== "media") continue;
    const titles = new Set();
    for (const m of (rule.media ?? "").matchAll(/\(\s*([a-z-]+)\s*[:)]/gi)) {
      const title = mediaFeatures.get(m[1].toLowerCase().replace(/-(min|max)-device-pixel-ratio$/, "-device-pixel-ratio"));
      if (title) titles.add(title);
    }
    checker.checkFeaturesSupport([...titles]);
    for (const inner of rule.rules ?? []) {
      if (inner.type !== "rule") continue;
      checker.checkCSSDeclarations(
        (inner.declarations ?? [])
          .filter((d) => d.type !== "comment")
          .map((d) => ({ property: d.property, value: d.value })),
      );
      checker.checkCSSSelectors(inner.selectors ?? []);
    }
    checkMedia(checker, rule.rules);
  }
}

const report = {};
for (const file of files) {
  const html = fs.readFileSync(file, "utf8");
  const checker = new DoIUseEmail({ emailClients: clients.split(",") });
  checker.check(html);
  for (const sheet of parseHtml(html).stylesheets) checkMedia(checker, sheet.stylesheet?.rules);
  const once = (messages) => [...new Set(messages)];
  report[file] = {
    errors: once(checker.errors),
    warnings: once(checker.warnings),
    notes: once(checker.notes),
  };
}
process.stdout.write(`${JSON.stringify(report, null, 1)}\n`);
