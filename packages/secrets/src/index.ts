export * as LocalKeyFileSecretAdapter from "./LocalKeyFileSecretAdapter.ts"
