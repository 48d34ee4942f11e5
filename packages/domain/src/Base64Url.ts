/**
 * base64url (no padding) of UTF-8 text, the same in Node and in a browser: cursors are checked by the schemas the
 * typed client also runs in the workbench, where there is no `Buffer`.
 */
export const toBase64Url = (text: string): string => {
  let binary = ""
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
}

/** The text `toBase64Url` made, or `undefined` when `encoded` is not base64url. */
export const fromBase64Url = (encoded: string): string | undefined => {
  if (!/^[A-Za-z0-9_-]*$/.test(encoded)) return undefined
  try {
    const binary = atob(encoded.replace(/-/g, "+").replace(/_/g, "/"))
    return new TextDecoder().decode(Uint8Array.from(binary, (char) => char.charCodeAt(0)))
  } catch {
    return undefined
  }
}
