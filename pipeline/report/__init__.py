"""The cost report (one self-contained HTML file per day and per month to date) and the alerts that point to it.

`data` reads the warehouse tables a report needs, `sections` turns them into charts with findings in words,
`render` writes the page (plotly.js inlined, so it opens with no network), `store` puts it under
`<warehouse>/reports/`, `build` does all of that for a day, and `alerts` turns failed checks into one-line
messages for SNS and Slack. Nothing is imported here: plotly is heavy, and the alert sensor needs none of it.
"""
