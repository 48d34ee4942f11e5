export * from "./CoworkClient.ts"
export * from "./SseStream.ts"
export * from "./SessionEvents.ts"
export * from "./DeliveryStream.ts"
