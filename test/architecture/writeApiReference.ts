/** `npm run docs:api`: rewrites the generated route table of docs/api-additions.md from the `Api` definition. */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { DOC_PATH, renderRouteTable, withTable } from "./ApiReference.ts"

const file = Path.resolve(import.meta.dirname, "../..", DOC_PATH)
Fs.writeFileSync(file, withTable(Fs.readFileSync(file, "utf8"), renderRouteTable()))
console.log(`${DOC_PATH}: route table written`)
