// The Dashboard type of @grafana/schema as a dashboard JSON file spells it, with the panels,
// their options and field config, and their queries typed as far as the package publishes them.
import type { DataQuery, DataSourceRef, Dashboard, FieldConfig, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type * as AnnotationsList from '@grafana/schema/dist/esm/raw/composable/annotationslist/panelcfg/x/AnnotationsListPanelCfg_types.gen';
import type * as BarChart from '@grafana/schema/dist/esm/raw/composable/barchart/panelcfg/x/BarChartPanelCfg_types.gen';
import type * as BarGauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as DashboardList from '@grafana/schema/dist/esm/raw/composable/dashboardlist/panelcfg/x/DashboardListPanelCfg_types.gen';
import type * as Gauge from '@grafana/schema/dist/esm/raw/composable/gauge/panelcfg/x/GaugePanelCfg_types.gen';
import type * as Heatmap from '@grafana/schema/dist/esm/raw/composable/heatmap/panelcfg/x/HeatmapPanelCfg_types.gen';
import type * as Histogram from '@grafana/schema/dist/esm/raw/composable/histogram/panelcfg/x/HistogramPanelCfg_types.gen';
import type * as Logs from '@grafana/schema/dist/esm/raw/composable/logs/panelcfg/x/LogsPanelCfg_types.gen';
import type * as News from '@grafana/schema/dist/esm/raw/composable/news/panelcfg/x/NewsPanelCfg_types.gen';
import type * as PieChart from '@grafana/schema/dist/esm/raw/composable/piechart/panelcfg/x/PieChartPanelCfg_types.gen';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as StateTimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as StatusHistory from '@grafana/schema/dist/esm/raw/composable/statushistory/panelcfg/x/StatusHistoryPanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as Text from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type * as Trend from '@grafana/schema/dist/esm/raw/composable/trend/panelcfg/x/TrendPanelCfg_types.gen';
import type * as XYChart from '@grafana/schema/dist/esm/raw/composable/xychart/panelcfg/x/XYChartPanelCfg_types.gen';

type IsAny<T> = 0 extends 1 & T ? true : false;

/**
 * A type as JSON spells it. The published types use TypeScript enums (ThresholdsMode,
 * FieldColorModeId, MappingType ...), and a string in a file is never a string enum member:
 * each enum becomes the union of its values ("absolute" | "percentage"). Numeric enums accept
 * their values as they are.
 */
export type AsJson<T> =
  IsAny<T> extends true ? T
  : T extends string ? `${T}`
  : T extends number | boolean | null | undefined ? T
  : T extends Array<infer Item> ? Array<AsJson<Item>>
  : T extends object ? { [Key in keyof T]: AsJson<T[Key]> }
  : T;

/** Every field optional at every depth: Grafana fills a panel's missing options with defaults. */
type Defaulted<T> =
  IsAny<T> extends true ? T
  : T extends Array<infer Item> ? Array<Defaulted<Item>>
  : T extends object ? { [Key in keyof T]?: Defaulted<T[Key]> }
  : T;

/** A query: the fields common to every data source; the data source's own are not published. */
type QueryJson = AsJson<Omit<DataQuery, 'datasource'>> & {
  datasource?: AsJson<DataSourceRef> | null;
  [field: string]: unknown;
};

/** A panel of a type whose options and field config (`custom`) @grafana/schema publishes. */
type PanelJson<Type extends string, Options, Custom> =
  Omit<AsJson<Panel>, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
    type: Type;
    options?: Defaulted<AsJson<Options>>;
    fieldConfig?: Omit<AsJson<FieldConfigSource>, 'defaults'> & {
      defaults: Omit<AsJson<FieldConfig>, 'custom'> & { custom?: Defaulted<AsJson<Custom>> };
    };
    targets?: QueryJson[];
  };

type NoCustom = Record<string, never>;

/** The panel types @grafana/schema 11.3 publishes, by the `type` a panel names. */
export type TypedPanelJson =
  | PanelJson<'annolist', AnnotationsList.Options, NoCustom>
  | PanelJson<'barchart', BarChart.Options, BarChart.FieldConfig>
  | PanelJson<'bargauge', BarGauge.Options, NoCustom>
  | PanelJson<'dashlist', DashboardList.Options, NoCustom>
  | PanelJson<'gauge', Gauge.Options, NoCustom>
  | PanelJson<'heatmap', Heatmap.Options, Heatmap.FieldConfig>
  | PanelJson<'histogram', Histogram.Options, Histogram.FieldConfig>
  | PanelJson<'logs', Logs.Options, NoCustom>
  | PanelJson<'news', News.Options, NoCustom>
  | PanelJson<'piechart', PieChart.Options, PieChart.FieldConfig>
  | PanelJson<'stat', Stat.Options, NoCustom>
  | PanelJson<'state-timeline', StateTimeline.Options, StateTimeline.FieldConfig>
  | PanelJson<'status-history', StatusHistory.Options, StatusHistory.FieldConfig>
  | PanelJson<'table', Table.Options, Table.FieldConfig>
  | PanelJson<'text', Text.Options, NoCustom>
  | PanelJson<'timeseries', TimeSeries.Options, TimeSeries.FieldConfig>
  | PanelJson<'trend', Trend.Options, Trend.FieldConfig>
  | PanelJson<'xychart', XYChart.Options, XYChart.FieldConfig>;

type RowPanelJson = Omit<AsJson<RowPanel>, 'panels'> & { panels: TypedPanelJson[] };

export type DashboardJson = Omit<AsJson<Dashboard>, 'panels'> & {
  panels?: Array<TypedPanelJson | RowPanelJson>;
};
