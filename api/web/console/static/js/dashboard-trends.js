// The dashboard's trends: cases per week or month (bars) and the rates (lines), ECharts (vendored).
import * as echarts from "echarts";
import { _ } from "wangge/console.js";

const SERIES = [
  ["on_the_spot", _("On-the-spot completion rate"), "#1f6f8b"],
  ["satisfaction", _("Satisfaction"), "#1b7f3b"],
  ["time_limit", _("Closed on time"), "#6a1b9a"],
  ["closure", _("Closure rate"), "#5f6f75"],
];

export function drawTrends(element, config) {
  const chart = echarts.init(element, null, { renderer: "canvas" });
  const draw = (by) => {
    const rows = by === "week" ? config.weeks : config.months;
    const pct = (v) => (v == null ? null : Math.round(v * 1000) / 10);
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { fontSize: 11 } },
      grid: { left: 44, right: 44, top: 72, bottom: 28 },
      xAxis: { type: "category", data: rows.map((r) => r.key) },
      yAxis: [
        { type: "value", minInterval: 1 },
        { type: "value", min: 0, max: 100, position: "right", axisLabel: { formatter: "{value}%" } },
      ],
      series: [
        { name: _("Cases"), type: "bar", data: rows.map((r) => r.incidents), itemStyle: { color: "#c9d6dc" } },
        { name: _("Overdue"), type: "bar", data: rows.map((r) => r.overdue), itemStyle: { color: "#d7301f" } },
        ...SERIES.map(([key, label, colour]) => ({
          name: label, type: "line", yAxisIndex: 1, data: rows.map((r) => pct(r[key])),
          itemStyle: { color: colour }, lineStyle: { color: colour }, symbolSize: 4,
        })),
      ],
    }, true);
    element.dataset.by = by;
    element.dataset.points = String(rows.length);
    const csv = document.getElementById("wg-trends-csv");
    if (csv) csv.href = csv.href.replace(/by=(week|month)/, `by=${by}`);
    for (const b of document.querySelectorAll(".wg-toggle button")) {
      b.setAttribute("aria-pressed", String(b.dataset.by === by));
    }
  };
  for (const b of document.querySelectorAll(".wg-toggle button")) {
    b.addEventListener("click", () => draw(b.dataset.by));
  }
  draw("month");
  new ResizeObserver(() => chart.resize()).observe(element);
  return chart;
}
