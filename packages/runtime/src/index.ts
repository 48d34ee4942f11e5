export * as ScriptedRuntime from "./ScriptedRuntime.ts"
