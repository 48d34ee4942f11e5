export * as LocalKeyFileSecretAdapter from "./LocalKeyFileSecretAdapter.ts"
export * from "./SecretAdapterReadiness.ts"
