import Mustache

/// The pages' Mustache templates, embedded (no asset build step). `{{x}}`
/// HTML-escapes; `{{{x}}}` is used only for the chart, which the server
/// draws from numbers.
enum DashboardTemplates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in all { try library.register(text, named: name) }
        return library
    }

    static let all: [(String, String)] = [
        ("header", header), ("footer", footer), ("overview", overview), ("jobs", jobs), ("job", job), ("cron", cron),
        ("history", history), ("message", message),
    ]

    static let header = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>{{title}} · Conveyor</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
        header{background:#24303f;color:#fff;padding:8px 16px;display:flex;gap:18px;align-items:center}
        header a{color:#cfe0f5;text-decoration:none}header a.brand{color:#fff;font-weight:600}
        main{padding:12px 16px;max-width:1200px}
        table{border-collapse:collapse;margin:6px 0 14px;background:#fff}
        th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
        th{background:#f0f2f5}td.num{text-align:right}
        .cards{display:flex;gap:12px;margin:8px 0}.card{background:#fff;border:1px solid #ddd;padding:8px 14px;min-width:110px}
        .card b{display:block;font-size:22px}
        pre{margin:0;white-space:pre-wrap;word-break:break-all;max-width:800px}
        .flash{background:#e6f4ea;border:1px solid #9c9;padding:6px 10px}.error{background:#fdecea;border:1px solid #d99;padding:6px 10px}
        .current{background:#fff8d6}form.inline{display:inline}
        .chart{background:#fff;border:1px solid #ddd}
        .ok{color:#2a7a3a}.failed{color:#b3261e}
        </style></head><body>
        <header><a class="brand" href="/">Conveyor</a><a href="/">Overview</a><a href="/jobs?state=pending">Pending</a>
        <a href="/jobs?state=running">Running</a><a href="/jobs?state=finished">Finished</a><a href="/cron">Cron</a>
        <a href="/history">History</a></header><main>
        <h1>{{title}}</h1>
        {{#flash}}<p class="flash" id="flash">{{flash}}</p>{{/flash}}
        {{#error}}<p class="error" id="error">{{error}}</p>{{/error}}

        """

    static let footer = """
        <p><small>Redis time {{now}}</small></p>
        </main></body></html>

        """

    static let overview = """
        {{> header}}
        <div class="cards" id="counts">
        <div class="card">pending<b id="count-pending">{{counts.pending}}</b></div>
        <div class="card">running<b id="count-running">{{counts.running}}</b></div>
        <div class="card">finished<b id="count-finished">{{counts.finished}}</b></div>
        <div class="card">live workers<b id="count-workers">{{workerCount}}</b></div>
        </div>
        <h2>By type</h2>
        {{^byTypeComplete}}<p>Counted from the oldest {{typeScanLimit}} jobs per state and partition: at least these many.</p>{{/byTypeComplete}}
        <table id="by-type"><tr><th>type</th><th>pending</th><th>running</th><th>finished</th></tr>
        {{#byType}}<tr><td>{{type}}</td><td class="num">{{pending}}</td><td class="num">{{running}}</td><td class="num">{{finished}}</td></tr>{{/byType}}
        {{^byType}}<tr><td colspan="4">no jobs</td></tr>{{/byType}}
        </table>
        <h2>Oldest due job</h2>
        {{#oldest}}<p id="oldest">job <a href="/jobs/{{id}}">{{id}}</a> ({{type}}, user {{userId}}), due {{due}}, {{lateness}}</p>{{/oldest}}
        {{^oldest}}<p id="oldest">nothing pending</p>{{/oldest}}
        <h2>Finished jobs per minute, last hour</h2>
        <p id="totals">last hour: <span class="ok">{{hour.ok}} ok</span>, <span class="failed">{{hour.failed}} failed</span>, {{hour.interrupted}} interrupted ·
        last 5 min: {{five.ok}} ok, {{five.failed}} failed</p>
        {{{chart}}}
        <h2>Live workers</h2>
        <table id="workers"><tr><th>id</th><th>host</th><th>pid</th><th>running</th><th>concurrency</th><th>types</th><th>started</th><th>last heartbeat</th></tr>
        {{#workers}}<tr><td>{{id}}</td><td>{{host}}</td><td class="num">{{pid}}</td><td class="num">{{jobsRunning}}</td><td class="num">{{concurrency}}</td><td>{{types}}</td><td>{{started}}</td><td>{{lastHeartbeat}}</td></tr>{{/workers}}
        {{^workers}}<tr><td colspan="8">no live workers</td></tr>{{/workers}}
        </table>
        {{> footer}}
        """

    static let jobs = """
        {{> header}}
        <form method="get" action="/jobs" id="filter">
        <label>state <select name="state">{{#states}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/states}}</select></label>
        <label>type <input name="type" value="{{type}}"></label>
        <label>user <input name="user" value="{{user}}" size="8"></label>
        {{#multiPartition}}<label>partition <input name="partition" value="{{partition}}" size="3"> of {{partitionCount}}</label>{{/multiPartition}}
        <button type="submit">Filter</button></form>
        <p id="summary">{{total}} {{state}} jobs{{#multiPartition}} in partition {{partition}}{{/multiPartition}}; showing {{shown}} from index {{offset}}{{#filtered}} (examined {{examined}}){{/filtered}}.</p>
        <table id="jobs"><tr><th>id</th><th>type</th><th>user</th><th>due</th><th>started</th><th>finished</th><th>result</th><th>attempt</th><th>from</th></tr>
        {{#rows}}<tr><td><a href="/jobs/{{id}}">{{id}}</a></td><td>{{type}}</td><td class="num">{{userId}}</td><td>{{due}}</td><td>{{started}}</td><td>{{finished}}</td><td>{{outcome}}</td><td class="num">{{attempt}}</td><td>{{#from}}<a href="/jobs/{{from}}">{{from}}</a>{{/from}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="9">no jobs</td></tr>{{/rows}}
        </table>
        <p>{{#first}}<a href="{{first}}" id="first-page">first page</a> {{/first}}{{#previous}}<a href="{{previous}}" id="previous-page">previous</a> {{/previous}}{{#next}}<a href="{{next}}" id="next-page">next</a>{{/next}}</p>
        {{> footer}}
        """

    static let job = """
        {{> header}}
        <p id="source">{{source}}</p>
        <table id="fields">{{#fields}}<tr><th>{{name}}</th><td>{{#link}}<a href="/jobs/{{link}}">{{value}}</a>{{/link}}{{^link}}<pre>{{value}}</pre>{{/link}}</td></tr>{{/fields}}</table>
        <div id="actions">
        {{#canCancel}}<form class="inline" method="post" action="/jobs/{{id}}/cancel"><input type="hidden" name="csrf" value="{{csrf}}"><button id="cancel" type="submit">Cancel</button></form>{{/canCancel}}
        {{#canRerun}}<form class="inline" method="post" action="/jobs/{{id}}/rerun"><input type="hidden" name="csrf" value="{{csrf}}"><button id="rerun" type="submit">Run again now</button></form>{{/canRerun}}
        {{#canDelete}}<form class="inline" method="post" action="/jobs/{{id}}/delete"><input type="hidden" name="csrf" value="{{csrf}}"><button id="delete" type="submit">Delete</button></form>{{/canDelete}}
        </div>
        <h2>Chain (rescheduledFromJob)</h2>
        {{^historyConfigured}}<p>Redis only: start the dashboard with --history-dir to include archived jobs.</p>{{/historyConfigured}}
        <table id="chain"><tr><th>id</th><th>where</th><th>state</th><th>created</th><th>finished</th><th>result</th><th>attempt</th><th>from</th></tr>
        {{#chain}}<tr{{#current}} class="current"{{/current}}><td><a href="/jobs/{{id}}">{{id}}</a></td><td>{{where}}</td><td>{{state}}</td><td>{{created}}</td><td>{{finished}}</td><td>{{outcome}}</td><td class="num">{{attempt}}</td><td>{{from}}</td></tr>{{/chain}}
        </table>
        {{> footer}}
        """

    static let cron = """
        {{> header}}
        <p id="summary">Cron jobs among the {{examined}} earliest pending jobs{{#truncated}} (not all pending jobs were examined){{/truncated}}.</p>
        <table id="cron"><tr><th>job</th><th>type</th><th>user</th><th>schedule</th><th>time zone</th><th>next run</th><th>then</th></tr>
        {{#rows}}<tr><td><a href="/jobs/{{id}}">{{id}}</a></td><td>{{type}}</td><td class="num">{{userId}}</td><td><code>{{schedule}}</code></td><td>{{timeZone}}</td><td>{{due}}</td><td>{{later}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="7">no cron jobs</td></tr>{{/rows}}
        </table>
        {{> footer}}
        """

    static let history = """
        {{> header}}
        {{^configured}}<p>No history directory: start the dashboard with --history-dir DIR (the archiver's).</p>{{/configured}}
        {{#configured}}
        <form method="get" action="/history" id="search">
        <label>id <input name="id" value="{{query.id}}" size="8"></label>
        <label>type <input name="type" value="{{query.type}}"></label>
        <label>user <input name="user" value="{{query.user}}" size="8"></label>
        <label>outcome <select name="success"><option value="">any</option><option value="true"{{#query.ok}} selected{{/query.ok}}>succeeded</option><option value="false"{{#query.failed}} selected{{/query.failed}}>failed</option></select></label>
        <label>since <input name="since" value="{{query.since}}" placeholder="2026-11-29T09:00:00Z"></label>
        <label>until <input name="until" value="{{query.until}}"></label>
        <label>limit <input name="limit" value="{{query.limit}}" size="4"></label>
        <button type="submit">Search</button></form>
        <table id="history"><tr><th>id</th><th>type</th><th>user</th><th>finished</th><th>result</th><th>attempt</th><th>from</th></tr>
        {{#rows}}<tr><td><a href="/jobs/{{id}}">{{id}}</a></td><td>{{type}}</td><td class="num">{{userId}}</td><td>{{finished}}</td><td>{{outcome}}</td><td class="num">{{attempt}}</td><td>{{from}}</td></tr>{{/rows}}
        {{^rows}}<tr><td colspan="7">no archived jobs match</td></tr>{{/rows}}
        </table>
        {{/configured}}
        {{> footer}}
        """

    static let message = """
        {{> header}}
        <p><a href="/">Back to the overview</a></p>
        {{> footer}}
        """
}
