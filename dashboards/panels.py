"""Building blocks of the boards: Flux and PromQL targets, variables and panel presets.

Each preset sets every panel option Grafana's schema marks as required, so a board renders
the same in Grafana 11, 12 and 13 and validates against the shared JSON schemas.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import bargauge, geomap, prometheus, stat, table, text
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import timeseries as timeseries_builders
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import geomap as geomap_models
from grafana_foundation_sdk.models import text as text_models
from grafana_foundation_sdk.models.common import DataSourceRef

from dashboards import flux
from dashboards.datasources import INFLUX, INFLUX_AGG, PROMETHEUS
from urbanpulse.influx_layout import AGGREGATE_MEASUREMENT, READING_MEASUREMENT

# (value, colour). The first step is the base colour: Grafana treats its value as -Infinity
# whatever it says, and the shared schema wants a number there, so the boards write 0.
Step = tuple[float, str]


class FluxQuery(cogvariants.Dataquery):
    """A query of Grafana's InfluxDB data source in Flux mode (the SDK ships no such model)."""

    def __init__(self, query: str, ref_id: str, datasource: DataSourceRef) -> None:
        self.query = query
        self.ref_id = ref_id
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        """The target as Grafana stores it in a panel."""
        return {
            "datasource": self.datasource.to_json(),
            "query": self.query,
            "refId": self.ref_id,
        }


class Flux(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder of a :class:`FluxQuery` on the raw data source (``agg``: the aggregate one)."""

    def __init__(self, query: str, ref_id: str = "A", *, agg: bool = False) -> None:
        self._internal = FluxQuery(query, ref_id, INFLUX_AGG if agg else INFLUX)

    def build(self) -> FluxQuery:
        """The query."""
        return self._internal


def promql(expr: str, legend: str = "__auto", ref_id: str = "A") -> prometheus.Dataquery:
    """A Prometheus range query of the platform metrics."""
    return (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref_id)
        .range()
        .datasource(PROMETHEUS)
    )


# ---- template variables ------------------------------------------------------------------


def query_variable(
    name: str, label: str, query: str, *, multi: bool = False, agg: bool = False
) -> dashboard_builders.QueryVariable:
    """A variable whose options are the values a Flux query returns, refreshed with the range."""
    variable = (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(INFLUX_AGG if agg else INFLUX)
        .query(query)
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.ALPHABETICAL_ASC)
        .allow_custom_value(False)
    )
    if multi:
        # "All" becomes ".*" inside the regex literals the queries use (${name:regex}).
        variable = variable.multi(True).include_all(True).all_value(".*")
    return variable


def tenant_variable() -> dashboard_builders.QueryVariable:
    """The tenant (municipality) whose data a board shows."""
    return query_variable(
        "tenant",
        "Tenant",
        flux.tag_values(READING_MEASUREMENT, "tenant", 'r._field == "value"'),
    )


def district_variable(multi: bool = True) -> dashboard_builders.QueryVariable:
    """Districts of the tenant that have district aggregates in the time range."""
    return query_variable(
        "district",
        "District",
        flux.tag_values(
            AGGREGATE_MEASUREMENT,
            "district",
            f'r.tenant == {flux.TENANT} and r.scope == "district" and r._field == "count"',
        ),
        multi=multi,
        agg=True,
    )


# ---- panels --------------------------------------------------------------------------------


def thresholds(steps: list[Step]) -> dashboard_builders.ThresholdsConfig:
    """Absolute thresholds, the first step being the base colour."""
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(dashboard_models.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_models.Threshold(value=value, color=color) for value, color in steps])
    )


NEUTRAL: list[Step] = [(0, "green")]


def timeseries(
    title: str,
    targets: Sequence[cogbuilder.Builder[cogvariants.Dataquery]],
    *,
    unit: str = "short",
    description: str = "",
    steps: list[Step] | None = None,
    bars: bool = False,
    display_name: str = "",
) -> timeseries_builders.Panel:
    """A time series panel; with ``steps``, the thresholds are drawn as dashed lines."""
    panel = (
        timeseries_builders.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs([])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .line_width(1)
        .fill_opacity(10)
        .span_nulls(False)
        .thresholds(thresholds(steps or NEUTRAL))
        .thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphThresholdsStyleMode.DASHED
                if steps
                else common.GraphThresholdsStyleMode.OFF
            )
        )
    )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    if display_name:
        panel = panel.display_name(display_name)
    for target in targets:
        panel = panel.with_target(target)
    return panel


def stat_panel(
    title: str,
    target: cogbuilder.Builder[cogvariants.Dataquery],
    *,
    unit: str = "short",
    description: str = "",
    steps: list[Step] | None = None,
    calc: str = "lastNotNull",
) -> stat.Panel:
    """A single big number (reduced with ``calc``), coloured by its thresholds."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .text_mode(common.BigValueTextMode.AUTO)
        .reduce_options(common_builders.ReduceDataOptions().calcs([calc]).values(False))
        .thresholds(thresholds(steps or NEUTRAL))
        .with_target(target)
    )


def bargauge_panel(
    title: str,
    target: cogbuilder.Builder[cogvariants.Dataquery],
    *,
    unit: str = "short",
    description: str = "",
    steps: list[Step] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    display_name: str = "",
) -> bargauge.Panel:
    """Horizontal bars, one per series (sensor or district), last value, coloured by threshold."""
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .show_unfilled(True)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(steps or NEUTRAL))
        .with_target(target)
    )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if display_name:
        panel = panel.display_name(display_name)
    return panel


def table_panel(
    title: str,
    target: cogbuilder.Builder[cogvariants.Dataquery],
    *,
    description: str = "",
    unit: str = "short",
) -> table.Panel:
    """A plain table of the query's rows."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .align(common.FieldTextAlignment.AUTO)
        .inspect(False)
        .filterable(True)
        .with_target(target)
    )


def sensor_map(
    title: str, target: cogbuilder.Builder[cogvariants.Dataquery], description: str = ""
) -> geomap.Panel:
    """A map of sensors placed by their ``lat``/``lon`` columns, zoomed to fit the data."""
    markers = (
        common_builders.MapLayerOptions()
        .type("markers")
        .name("Sensors")
        .location(
            common_builders.FrameGeometrySource()
            .mode(common.FrameGeometrySourceMode.COORDS)
            .latitude("lat")
            .longitude("lon")
        )
        .config(
            {
                "showLegend": True,
                "style": {
                    "color": {"field": "value", "fixed": "dark-green"},
                    "size": {"fixed": 6, "min": 4, "max": 12},
                    "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                    "text": {"field": "sensor_id", "mode": "field"},
                    "textConfig": {"fontSize": 10, "offsetY": -12},
                },
            }
        )
        .tooltip(True)
    )
    return (
        geomap.Panel()
        .title(title)
        .description(description)
        .view(geomap.MapViewConfig().id("fit").all_layers(True).zoom(12))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True))
        .basemap(common_builders.MapLayerOptions().type("default").name("Basemap"))
        .layers([markers])
        .tooltip(geomap.TooltipOptions().mode(geomap_models.TooltipMode.DETAILS))
        .with_target(target)
    )


def note(title: str, markdown: str) -> text.Panel:
    """A Markdown note for the people reading the board."""
    return text.Panel().title(title).mode(text_models.TextMode.MARKDOWN).content(markdown)
