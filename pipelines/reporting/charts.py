"""The dashboard's Plotly figures: one look (colours, fonts, legends) for every chart.

Bars are coloured by scorecard status so a chart reads like the tables next to it: green met,
orange below target, light blue still in progress, neutral blue when there is no target yet.
Labels are categorical (localized week and month names) so Dutch readers never see English
month names from Plotly's date axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pipelines.reporting.i18n import (
    PLOTLY_SEPARATORS,
    fmt_day,
    fmt_month,
    fmt_percent,
    fmt_value,
    fmt_week,
    tr,
)
from pipelines.reporting.marts import PublishedMarts

FONT = "Inter, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2a37"
MUTED = "#6b7785"
GRID = "#e8ecf1"
STATUS_COLOURS = {
    "met": "#2e9e6a",
    "below": "#e0673f",
    "in_progress": "#a9bfdc",
    "none": "#6f8fba",
}
TARGET_COLOUR = "#1f2a37"
BASELINE_COLOUR = "#8e99a4"
STAGE_COLOURS = ("#9ec5e8", "#5b9bd5", "#2f6fb0", "#1f3a5f")
# KPI colours by position among the KPIs drawn together (registry reading order), so a KPI
# added to the registry gets a colour without naming it here.
KPI_PALETTE = ("#8fb8e3", "#3b7dc4", "#1f3a5f", "#2f6fb0", "#2e9e6a", "#8e5bb5", "#c2571a")
REVENUE_COLOUR = "#2f6fb0"
REVENUE_LIGHT = "#b9cfe9"
GROWTH_COLOUR = "#f08c00"
STAGES = ("marketing_lead", "sales_lead", "quote", "customer")

PLOTLY_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": [
        "select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d", "toggleSpikelines",
    ],
}


def kpi_colour(kpi_ids: Sequence[str], kpi_id: str) -> str:
    """The colour of a KPI among the KPIs of one chart."""
    return KPI_PALETTE[list(kpi_ids).index(kpi_id) % len(KPI_PALETTE)]


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def _layout(fig: go.Figure, language: str, height: int, **extra: Any) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        separators=PLOTLY_SEPARATORS[language],
        font={"family": FONT, "size": 12, "color": INK},
        margin={"l": 56, "r": 24, "t": 78, "b": 40},
        # The legend sits at the top of the figure, above the subplot titles, whatever the
        # figure's height.
        legend={"orientation": "h", "yref": "container", "y": 0.995, "yanchor": "top",
                "x": 0, "xanchor": "left", "font": {"size": 12}},
        hoverlabel={"font": {"family": FONT}},
        plot_bgcolor="white",
        paper_bgcolor="white",
        bargap=0.25,
        **extra,
    )
    fig.update_xaxes(showgrid=False, linecolor="#c9d1db", tickfont={"color": MUTED},
                     tickangle=0, automargin=True)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor="#c9d1db", tickfont={"color": MUTED})
    fig.update_annotations(font={"size": 13, "color": INK})
    return fig


def _thin_ticks(fig: go.Figure, labels: Sequence[str], max_ticks: int,
                row: int | None = None, col: int | None = None) -> None:
    """Show every n-th category label, horizontally, so small panels stay readable."""
    if not labels:
        return
    # Explicitly categorical: legend-only traces (x=[None]) must not make an axis numeric.
    fig.update_xaxes(type="category", row=row, col=col)
    step = max(1, math.ceil(len(labels) / max_ticks))
    ticks = list(labels)[::-1][::step][::-1]  # always label the latest period
    fig.update_xaxes(tickmode="array", tickvals=ticks, ticktext=ticks, row=row, col=col)


def _period_label(period: date, grain: str, language: str) -> str:
    return fmt_week(period, language) if grain == "week" else fmt_month(period, language)


def _period_long(period: date, grain: str, language: str) -> str:
    if grain == "week":
        return f"{fmt_week(period, language)} ({fmt_day(period, language)})"
    return fmt_month(period, language, long=True)


def _legend_entries(fig: go.Figure, language: str, statuses: Sequence[str],
                    target: bool = True, baseline: bool = True) -> None:
    """Legend-only traces, so a legend stays right however the bars are coloured or hidden."""
    for status in statuses:
        fig.add_trace(go.Bar(x=[None], y=[None], name=tr(status, language),
                             marker_color=STATUS_COLOURS[status], hoverinfo="skip",
                             showlegend=True), row=1, col=1)
    if target:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=tr("target", language),
                                 line={"color": TARGET_COLOUR, "width": 2.5},
                                 hoverinfo="skip"), row=1, col=1)
    if baseline:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines",
                                 name=tr("baseline", language),
                                 line={"color": BASELINE_COLOUR, "width": 2, "dash": "dot"},
                                 hoverinfo="skip"), row=1, col=1)


def _bar_status(row: Any) -> str:
    """The colour class of one period's bar (a row of `PublishedMarts.series`)."""
    if _nan(row.target):
        return "in_progress" if not row.is_complete else "none"
    if not row.is_complete:
        return "in_progress"
    return str(row.status) if row.status in ("met", "below") else "none"


def _series_traces(
    marts: PublishedMarts, kpi_id: str, scope: str, scope_id: str, grain: str,
    periods: Sequence[date], language: str, visible: bool = True,
) -> tuple[list[go.BaseTraceType], set[str], dict[str, Any] | None, float]:
    """Actual bars (status-coloured), target step line and baseline line of one KPI series,
    and the top of a y range that shows them all."""
    unit = str(marts.kpi(kpi_id)["unit"])
    data = marts.series(kpi_id, scope, scope_id)
    data = data[data.period_start.isin(periods)]
    if data.empty:
        return [], set(), None, _y_top([], unit)
    labels = [_period_label(p, grain, language) for p in data.period_start]
    statuses = [_bar_status(row) for row in data.itertuples()]
    hover = []
    for row, status in zip(data.itertuples(), statuses, strict=True):
        text = f"{tr('actual', language)}: {fmt_value(row.value, unit, language)}"
        if not _nan(row.target):
            text += (f"<br>{tr('target', language)}: {fmt_value(row.target, unit, language)}"
                     f" · {fmt_percent(row.attainment, language)}")
        text += f"<br>{tr(status, language)}"
        hover.append(text)
    traces: list[go.BaseTraceType] = [
        go.Bar(
            x=labels, y=list(data.value), name=tr("actual", language),
            marker={"color": [STATUS_COLOURS[s] for s in statuses], "line": {"width": 0}},
            customdata=hover, hovertemplate="%{customdata}<extra></extra>",
            showlegend=False, visible=visible,
        )
    ]
    if data.target.notna().any():
        traces.append(go.Scatter(
            x=labels, y=list(data.target), mode="lines", name=tr("target", language),
            line={"color": TARGET_COLOUR, "width": 2.5, "shape": "hvh"},
            hoverinfo="skip", showlegend=False, connectgaps=False, visible=visible,
        ))
    baseline = marts.baseline(kpi_id, scope, scope_id)
    if baseline is not None:
        traces.append(go.Scatter(
            x=labels, y=[baseline["baseline_value"]] * len(labels), mode="lines",
            name=tr("baseline", language),
            line={"color": BASELINE_COLOUR, "width": 2, "dash": "dot"},
            hoverinfo="skip", showlegend=False, visible=visible,
        ))
    tops = [*data.value, *data.target, baseline["baseline_value"] if baseline else None]
    return traces, set(statuses), baseline, _y_top(tops, unit)


def _y_top(values: Sequence[Any], unit: str) -> float:
    """Upper end of a y axis starting at 0; an all-zero series still gets readable ticks."""
    top = max([float(v) for v in values if not _nan(v)] + [0.0])
    if top <= 0:
        return {"eur": 1000.0, "ratio": 1.0}.get(unit, 5.0)
    return top * 1.08


def _yaxis_name(row: int, col: int, columns: int) -> str:
    """Layout key of a subplot's y axis (make_subplots numbers them row by row)."""
    n = (row - 1) * columns + col
    return "yaxis" if n == 1 else f"yaxis{n}"


def _axis_format(fig: go.Figure, unit: str, row: int, col: int) -> None:
    if unit == "eur":
        fig.update_yaxes(tickprefix="€", tickformat=",.0f", row=row, col=col)
    elif unit == "ratio":
        fig.update_yaxes(tickformat=".0%", row=row, col=col)
    else:
        fig.update_yaxes(tickformat=",.0f", rangemode="tozero", row=row, col=col)


def kpi_series_figure(
    marts: PublishedMarts, kpi_ids: Sequence[str], scope: str, scope_id: str, grain: str,
    periods: Sequence[date], language: str, columns: int = 3, height: int = 330,
) -> go.Figure | None:
    """Small multiples: one panel per KPI with actual bars, target and baseline."""
    kpi_ids = [k for k in kpi_ids if not marts.series(k, scope, scope_id).empty]
    if not kpi_ids:
        return None
    columns = min(columns, len(kpi_ids))
    rows = math.ceil(len(kpi_ids) / columns)
    fig = make_subplots(
        rows=rows, cols=columns, horizontal_spacing=0.07, vertical_spacing=0.16,
        subplot_titles=[marts.kpi_name(k, language) for k in kpi_ids],
    )
    statuses: set[str] = set()
    windows = []
    for i, kpi_id in enumerate(kpi_ids):
        row, col = i // columns + 1, i % columns + 1
        traces, seen, baseline, top = _series_traces(
            marts, kpi_id, scope, scope_id, grain, periods, language)
        statuses |= seen
        for trace in traces:
            fig.add_trace(trace, row=row, col=col)
        _axis_format(fig, str(marts.kpi(kpi_id)["unit"]), row, col)
        fig.update_yaxes(range=[0, top], row=row, col=col)
        ticks = (7 if grain == "week" else 5) if columns >= 3 else (9 if grain == "week" else 7)
        _thin_ticks(fig, [_period_label(p, grain, language) for p in periods], ticks, row, col)
        if baseline is not None:
            windows.append((row, col, baseline))
    order = [s for s in ("met", "below", "in_progress", "none") if s in statuses]
    _legend_entries(fig, language, order)
    _layout(fig, language, height * rows, hovermode="closest")
    for row, col, baseline in windows:
        _shade_baseline_window(fig, row, col, baseline, grain, periods, language)
    return fig


def _shade_baseline_window(
    fig: go.Figure, row: int, col: int, baseline: dict[str, Any], grain: str,
    periods: Sequence[date], language: str,
) -> None:
    """A light band over the periods the baseline (nulmeting) was measured on."""
    shown = [p for p in periods if baseline["baseline_from"] <= p <= baseline["baseline_to"]]
    if not shown:
        return
    fig.add_vrect(
        x0=_period_label(shown[0], grain, language), x1=_period_label(shown[-1], grain, language),
        x0shift=-0.5, x1shift=0.5, fillcolor="#eef1f5", opacity=0.9, layer="below",
        line_width=0, row=row, col=col,
        annotation_text=tr("baseline_window", language), annotation_position="top left",
        annotation_font={"size": 10, "color": MUTED},
    )


def attainment_figure(
    marts: PublishedMarts, members: Sequence[tuple[str, str, str]], kpi_ids: Sequence[str],
    period: date, language: str,
) -> go.Figure | None:
    """Grouped bars: each member's attainment per KPI in one complete period, 100 % line."""
    fig = go.Figure()
    any_bar = False
    names = [label for _, _, label in members]
    bars: list[tuple[str, list[float | None], list[str]]] = []
    for kpi_id in kpi_ids:
        unit = str(marts.kpi(kpi_id)["unit"])
        ys, hover = [], []
        for scope, scope_id, _label in members:
            card = marts.scorecard[
                (marts.scorecard.kpi_id == kpi_id) & (marts.scorecard.scope == scope)
                & (marts.scorecard.scope_id == scope_id)
                & (marts.scorecard.period_start == period)
            ]
            if card.empty or _nan(card.iloc[0].attainment):
                ys.append(None)
                hover.append(tr("no_target", language))
                continue
            rec = card.iloc[0]
            ys.append(rec.attainment)
            hover.append(
                f"{fmt_value(rec.actual, unit, language)} / {fmt_value(rec.target, unit, language)}"
                f" · {tr(str(rec.status), language)}"
            )
            any_bar = True
        bars.append((kpi_id, ys, hover))
    if not any_bar:
        return None
    # One outlier (700 %) must not flatten everyone else: clip the axis and label the bar.
    highest = max(y for _, ys, _ in bars for y in ys if y is not None)
    top = max(1.25, min(highest, 2.5)) * 1.1
    for kpi_id, ys, hover in bars:
        name = marts.kpi_name(kpi_id, language)
        fig.add_trace(go.Bar(
            x=names, y=[None if y is None else min(y, top) for y in ys], name=name,
            marker_color=kpi_colour(kpi_ids, kpi_id),
            customdata=[f"{fmt_percent(y, language)} · {h}" if y is not None else h
                        for y, h in zip(ys, hover, strict=True)],
            text=[fmt_percent(y, language) if y is not None and y > top else "" for y in ys],
            textposition="inside", insidetextanchor="end",
            textfont={"size": 10, "color": "white"},
            hovertemplate="%{x}<br>%{customdata}<extra>" + name + "</extra>",
        ))
    fig.add_hline(y=1, line={"color": TARGET_COLOUR, "width": 2, "dash": "dash"},
                  annotation_text=tr("target", language) + " 100%",
                  annotation_position="top left", annotation_font={"size": 11})
    _layout(fig, language, 340, barmode="group", hovermode="closest")
    fig.update_yaxes(tickformat=".0%", range=[0, top])
    return fig


def rep_detail_figure(
    marts: PublishedMarts, reps: Sequence[tuple[str, str]], action_ids: Sequence[str],
    result_ids: Sequence[str], weeks: Sequence[date], months: Sequence[date], language: str,
) -> go.Figure | None:
    """One rep at a time (a dropdown): weekly action KPIs above, monthly results below."""
    if not reps:
        return None
    kpi_rows = [(k, "week", weeks) for k in action_ids] + [(k, "month", months) for k in result_ids]
    columns = max(len(action_ids), len(result_ids), 1)
    fig = make_subplots(
        rows=2, cols=columns, horizontal_spacing=0.07, vertical_spacing=0.2,
        subplot_titles=[marts.kpi_name(k, language) for k in action_ids]
        + [""] * (columns - len(action_ids))
        + [marts.kpi_name(k, language) for k in result_ids],
    )
    _legend_entries(fig, language, ("met", "below", "in_progress", "none"))
    fixed = len(fig.data)
    owners: list[int] = []
    ranges: list[dict[str, list[float]]] = []
    for n, (user_id, _name) in enumerate(reps):
        ranges.append({})
        for i, (kpi_id, grain, periods) in enumerate(kpi_rows):
            row = 1 if grain == "week" else 2
            col = (i if grain == "week" else i - len(action_ids)) + 1
            traces, _, _, top = _series_traces(
                marts, kpi_id, "rep", user_id, grain, periods, language, visible=n == 0)
            for trace in traces:
                fig.add_trace(trace, row=row, col=col)
                owners.append(n)
            _axis_format(fig, str(marts.kpi(kpi_id)["unit"]), row, col)
            ranges[n][f"{_yaxis_name(row, col, columns)}.range"] = [0, top]
            if n == 0:
                fig.update_yaxes(range=[0, top], row=row, col=col)
    for i, (_kpi_id, grain, periods) in enumerate(kpi_rows):
        row = 1 if grain == "week" else 2
        col = (i if grain == "week" else i - len(action_ids)) + 1
        ticks = 6 if grain == "week" else 4
        _thin_ticks(fig, [_period_label(p, grain, language) for p in periods], ticks, row, col)
    buttons = []
    for n, (_user_id, name) in enumerate(reps):
        visible = [True] * fixed + [owner == n for owner in owners]
        buttons.append({"label": name, "method": "update",
                        "args": [{"visible": visible}, ranges[n]]})
    _layout(fig, language, 600, hovermode="closest")
    fig.update_layout(
        margin={"t": 96},
        legend={"x": 0.2, "xanchor": "left", "y": 0.985},
        updatemenus=[{
            "buttons": buttons, "direction": "down", "showactive": True, "x": 0, "xanchor": "left",
            "y": 1.16, "yanchor": "top", "bgcolor": "white", "bordercolor": "#c9d1db",
            "font": {"size": 13},
        }],
    )
    return fig


def funnel_figure(marts: PublishedMarts, team: str | None, months: Sequence[date],
                  language: str) -> go.Figure | None:
    """Contacts entering each stage in the given months."""
    data = marts.funnel[marts.funnel.entered_month.isin(months)]
    if team is not None:
        data = data[data.team == team]
    counts = [int(data[data.stage == s].contacts.sum()) for s in STAGES]
    if not any(counts):
        return None
    fig = go.Figure(go.Funnel(
        y=[tr(s, language) for s in STAGES], x=counts, textinfo="value",
        textfont={"size": 14, "color": "white"},
        marker={"color": list(STAGE_COLOURS)}, connector={"fillcolor": "#eef2f7"},
        hovertemplate="%{y}: %{x:,}<extra></extra>",
    ))
    _layout(fig, language, 340, showlegend=False)
    fig.update_layout(margin={"l": 110, "t": 20})
    return fig


def conversion_figure(
    marts: PublishedMarts, kpi_ids: Sequence[str], scope: str, scope_id: str,
    months: Sequence[date], language: str,
) -> go.Figure | None:
    """Conversion ratio per cohort month; immature cohorts lighter and dotted."""
    fig = go.Figure()
    immature: set[date] = set()
    for kpi_id in kpi_ids:
        data = marts.values[
            (marts.values.kpi_id == kpi_id) & (marts.values.scope == scope)
            & (marts.values.scope_id == scope_id) & marts.values.period_start.isin(months)
        ].sort_values("period_start")
        if data.empty:
            continue
        name = marts.kpi_name(kpi_id, language)
        colour = kpi_colour(kpi_ids, kpi_id)
        labels = [fmt_month(p, language) for p in data.period_start]
        hover = [
            f"{fmt_percent(r.value, language)} ({int(r.numerator)}/{int(r.denominator)})"
            f"<br>{tr('mature' if r.is_complete else 'immature', language)}"
            for r in data.itertuples()
        ]
        mature = [v if c else None for v, c in zip(data.value, data.is_complete, strict=True)]
        # The light part starts at the last mature point so the line stays continuous.
        flags = list(data.is_complete)
        first_open = next((i for i, c in enumerate(flags) if not c), len(flags))
        light = [
            v if (not c or i == first_open - 1) else None
            for i, (v, c) in enumerate(zip(data.value, flags, strict=True))
        ]
        immature |= {p for p, c in zip(data.period_start, flags, strict=True) if not c}
        fig.add_trace(go.Scatter(
            x=labels, y=mature, mode="lines+markers", name=name, legendgroup=kpi_id,
            line={"color": colour, "width": 2.5}, marker={"size": 7},
            customdata=hover, hovertemplate="%{customdata}<extra>" + name + "</extra>",
        ))
        fig.add_trace(go.Scatter(
            x=labels, y=light, mode="lines+markers", name=name, legendgroup=kpi_id,
            showlegend=False, opacity=0.45,
            line={"color": colour, "width": 2, "dash": "dot"},
            marker={"size": 7, "symbol": "circle-open"},
            customdata=hover, hovertemplate="%{customdata}<extra>" + name + "</extra>",
        ))
    if not fig.data:
        return None
    _layout(fig, language, 340, hovermode="closest")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    _thin_ticks(fig, [fmt_month(p, language) for p in months], 7)
    shown = [p for p in months if p in immature]
    if shown:
        fig.add_vrect(
            x0=fmt_month(shown[0], language), x1=fmt_month(shown[-1], language),
            x0shift=-0.5, x1shift=0.5, fillcolor="#f3f5f8", line_width=0, layer="below",
            annotation_text=tr("immature_band", language), annotation_position="top left",
            annotation_font={"size": 11, "color": MUTED},
        )
    return fig


def revenue_figure(
    marts: PublishedMarts, scope: str, scope_id: str, months: Sequence[date], language: str,
) -> go.Figure | None:
    """The growth KPI's base (new revenue) as bars (current month lighter) over its
    month-over-month growth bars; both KPIs come from the registry (computation `growth`).

    Growth gets its own panel: after a weak month it easily reads +500 %, which on a shared
    axis would flatten the revenue bars. Growth beyond the panel's range is clipped and labelled.
    """
    growth_ids = marts.active_kpis("insight", "growth")
    if not growth_ids:
        return None
    growth_id = growth_ids[0]
    base_id = str(marts.kpi(growth_id)["growth_of"])
    revenue = marts.series(base_id, scope, scope_id)
    revenue = revenue[revenue.period_start.isin(months)]
    if revenue.empty:
        return None
    growth = marts.values[
        (marts.values.kpi_id == growth_id) & (marts.values.scope == scope)
        & (marts.values.scope_id == scope_id)
    ].set_index("period_start")
    deals = marts.won_deals
    if scope == "team":
        deals = deals[(deals.team == scope_id) & deals.is_owned_by_sales_rep.fillna(False)]
    deals_per_month = deals.groupby("closed_month").deals.sum()
    labels = [fmt_month(p, language) for p in revenue.period_start]
    complete = list(revenue.is_complete)
    hover = []
    for row in revenue.itertuples():
        text = fmt_value(row.value, "eur", language)
        won = int(deals_per_month.get(row.period_start, 0))
        text += f" · {won} {tr('won_deals', language)}"
        if not row.is_complete:
            text += f" ({tr('month_to_date', language)})"
        hover.append(text)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.68, 0.32],
                        vertical_spacing=0.06)
    fig.add_trace(go.Bar(
        x=labels, y=list(revenue.value), name=marts.kpi_name(base_id, language),
        marker_color=[REVENUE_COLOUR if c else REVENUE_LIGHT for c in complete],
        customdata=hover, hovertemplate="%{x}: %{customdata}<extra></extra>",
    ), row=1, col=1)
    values = [growth.value.get(p) if p in growth.index else None for p in revenue.period_start]
    values = [None if _nan(v) else float(v) for v in values]
    top = max([1.0] + [v for v in values if v is not None and v <= 3.0])
    top = min(max(top, 1.0), 3.0) * 1.1
    shown = [None if v is None else min(v, top) for v in values]
    text = [fmt_percent(v, language) if v is not None and v > top else "" for v in values]
    colours = [
        (GROWTH_COLOUR if (v or 0) >= 0 else STATUS_COLOURS["below"]) if c else "#f7cf8f"
        for v, c in zip(values, complete, strict=True)
    ]
    fig.add_trace(go.Bar(
        x=labels, y=shown, name=tr("mom_growth", language), marker_color=colours,
        text=text, textposition="inside", insidetextanchor="end",
        textfont={"size": 10, "color": "white"},
        customdata=[fmt_percent(v, language) if v is not None else "–" for v in values],
        hovertemplate="%{x}: %{customdata}<extra>" + tr("mom_growth", language) + "</extra>",
    ), row=2, col=1)
    _layout(fig, language, 420, hovermode="closest")
    fig.update_layout(margin={"t": 44})
    fig.update_yaxes(tickprefix="€", tickformat=",.0f", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(tickformat="+.0%", range=[-1.05, top], zerolinecolor="#9aa5b1",
                     row=2, col=1)
    _thin_ticks(fig, labels, 12, 2, 1)
    return fig


def labels_figure(marts: PublishedMarts, threshold: float | None,
                  language: str) -> go.Figure | None:
    """Disagreement rate per judged labeller, the flagged ones in orange, the threshold line."""
    data = marts.labels[marts.labels.is_judged.fillna(False)].sort_values(
        ["inconsistency_rate", "labeller"], ascending=[True, False])
    if data.empty:
        return None
    names = [
        f"{r.full_name} ({r.labeller})" if isinstance(r.full_name, str) else str(r.labeller)
        for r in data.itertuples()
    ]
    colours = [STATUS_COLOURS["below"] if f else "#9fb3cc" for f in data.exceeds_threshold]
    hover = [f"{int(r.inconsistent)}/{int(r.labels_judged)}" for r in data.itertuples()]
    fig = go.Figure(go.Bar(
        x=list(data.inconsistency_rate), y=names, orientation="h", marker_color=colours,
        customdata=hover, hovertemplate="%{y}: %{x:.1%} (%{customdata})<extra></extra>",
    ))
    if threshold is not None:
        fig.add_vline(x=threshold, line={"color": TARGET_COLOUR, "width": 2, "dash": "dash"},
                      annotation_text=f"{tr('threshold', language)} "
                      f"{fmt_percent(threshold, language)}",
                      annotation_position="bottom right", annotation_font={"size": 11})
    _layout(fig, language, max(260, 22 * len(names) + 80), showlegend=False)
    fig.update_layout(margin={"l": 200, "t": 30})
    fig.update_xaxes(tickformat=".0%", rangemode="tozero", showgrid=True, gridcolor=GRID)
    return fig
