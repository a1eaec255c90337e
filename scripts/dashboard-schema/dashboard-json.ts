// The Dashboard type of @grafana/schema as a dashboard JSON file spells it. The published types
// use TypeScript enums (ThresholdsMode, FieldColorModeId, MappingType ...), and a string in a
// file can never be a string enum member: each enum becomes the union of its values' literals
// ("absolute" | "percentage"), everything else keeps its published type.
import type { Dashboard } from '@grafana/schema';

type IsAny<T> = 0 extends 1 & T ? true : false;

export type AsJson<T> =
  IsAny<T> extends true ? T
  : T extends string ? `${T}`
  : T extends number | boolean | null | undefined ? T
  : T extends Array<infer Item> ? Array<AsJson<Item>>
  : T extends object ? { [Key in keyof T]: AsJson<T[Key]> }
  : T;

export type DashboardJson = AsJson<Dashboard>;
