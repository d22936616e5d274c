import { syntheticSources } from '../tools/bench/synthetic.mjs';
import jsYaml from 'js-yaml';
import { serialize, deserialize } from 'node:v8';
const sources = syntheticSources({ services: 50000, policies: 10000 });
for (let r = 0; r < 2; r++) {
let parse = 0, json = 0, jparse = 0, ser = 0, deser = 0;
for (const s of sources) {
  let t = performance.now(); const v = jsYaml.loadAll(s.text, undefined, { schema: jsYaml.CORE_SCHEMA, json: false }); parse += performance.now() - t;
  t = performance.now(); const j = JSON.stringify(v); json += performance.now() - t;
  t = performance.now(); JSON.parse(j); jparse += performance.now() - t;
  t = performance.now(); const b = serialize(v); ser += performance.now() - t;
  t = performance.now(); deserialize(b); deser += performance.now() - t;
}
console.log({ parse: parse | 0, json: json | 0, jparse: jparse | 0, ser: ser | 0, deser: deser | 0 });
}
