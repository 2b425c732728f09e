#!/usr/bin/env bash
# Rebuild the pages' partial Plotly.js bundle (src/critmin/web/static/plotly/) and refresh the
# vendored Swagger UI (src/critmin/web/static/swagger/) from the npm registry.
# The bundle holds the trace types the pages draw: bar and scatter (cartesian), choropleth
# (overview map), sankey (country page); a page drawing another type must add it to entry.js.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
static="$here/../../src/critmin/web/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/entry.js" "$work/"
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund plotly.js@4.1.1 swagger-ui-dist@5.35.0 esbuild@0.28.2 >/dev/null
node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --global-name=Plotly \
  --define:global=window --metafile=meta.json --outfile="$static/plotly/plotly-critmin.min.js"
cp node_modules/plotly.js/LICENSE "$static/plotly/LICENSE.plotly.js.txt"
node -e '
const m = require("./meta.json"); const seen = new Set();
for (const f of Object.keys(m.inputs)) {
  const r = f.match(/node_modules\/((@[^\/]+\/)?[^\/]+)/g);
  if (r) seen.add(r[r.length - 1].replace("node_modules/", ""));
}
console.log("package\tversion\tlicence");
for (const p of [...seen].sort()) {
  const j = require("./node_modules/" + p + "/package.json");
  console.log(p + "\t" + j.version + "\t" + (typeof j.license === "string" ? j.license : JSON.stringify(j.license || j.licenses)));
}' > "$static/plotly/bundled-packages.tsv"
d=node_modules/swagger-ui-dist
cp "$d/swagger-ui-bundle.js" "$d/swagger-ui.css" "$d/favicon-32x32.png" \
   "$d/swagger-ui-bundle.js.LICENSE.txt" "$static/swagger/"
cp "$d/LICENSE" "$static/swagger/LICENSE.txt"
cp "$d/NOTICE" "$static/swagger/NOTICE.txt"
echo "bundle: $(wc -c < "$static/plotly/plotly-critmin.min.js") bytes"
