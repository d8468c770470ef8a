"""Vocabulary and sentence frames of the replica site: the project's own Tianjin-flavoured news text."""

from __future__ import annotations

import random
import re

# Proper names are geography and generic institutions; every sentence frame below is the
# project's own, so no fixture ever carries text copied from the real site.
PLACES = (
    "Tianjin",
    "Binhai New Area",
    "Tianjin Port",
    "the Haihe River",
    "Xiqing district",
    "Nankai district",
    "Heping district",
    "Hexi district",
    "Hebei district",
    "Hongqiao district",
    "Dongli district",
    "Jinnan district",
    "Beichen district",
    "Wuqing district",
    "Baodi district",
    "Jizhou district",
    "Ninghe district",
    "Jinghai district",
    "the Sino-Singapore Tianjin Eco-City",
    "Yujiapu",
    "Dongjiang Port",
    "the Tianjin Pilot Free Trade Zone",
    "the Lingang Economic Zone",
    "the Tianjin Economic-Technological Development Area",
    "the Five Great Avenues area",
    "the Italian Style Town",
    "Ancient Culture Street",
    "Panshan Mountain",
    "Qilihai wetland",
)
SHORT_PLACES = (
    "Tianjin",
    "Binhai",
    "Xiqing",
    "Nankai",
    "Heping",
    "Hexi",
    "Wuqing",
    "Jinnan",
    "Dongli",
    "Beichen",
    "Baodi",
    "Jizhou",
    "Ninghe",
    "Jinghai",
    "Dongjiang",
    "Yujiapu",
    "Haihe",
)
ORGS = (
    "the municipal commerce bureau",
    "the city's science and technology bureau",
    "the district government",
    "local authorities",
    "the port operator",
    "the municipal bureau of statistics",
    "the city's culture and tourism bureau",
    "the municipal development and reform commission",
    "the free trade zone administration",
    "the local customs office",
    "the city's transport commission",
    "the municipal education commission",
    "the district's investment promotion office",
    "the Tianjin branch of the central bank",
)
SECTORS = (
    "new energy vehicles",
    "biomedicine",
    "cold-chain logistics",
    "hydrogen energy",
    "intelligent manufacturing",
    "cruise tourism",
    "green shipping",
    "semiconductor packaging",
    "modern agriculture",
    "cross-border e-commerce",
    "artificial intelligence",
    "marine equipment",
    "aerospace parts",
    "financial leasing",
    "industrial software",
    "robotics",
    "digital health",
    "offshore wind power",
    "battery recycling",
    "R&D services",
)
PROJECTS = (
    "a smart container terminal",
    "an innovation center",
    "a logistics park",
    "a pilot program",
    "a research platform",
    "an industrial fund",
    "a talent service station",
    "a green hydrogen project",
    "a cultural festival",
    "a riverside night market",
    "an international shipping route",
    "a data center",
    "a vocational training base",
    "a science popularization hall",
    "an elderly care center",
    "a cross-border payment service",
    "a low-carbon industrial park",
    "a shared laboratory",
    "a heritage restoration program",
    "a rail freight corridor",
    "a sea-rail transport line",
    "a public library branch",
)
PROJECT_NOUNS = (
    "terminal",
    "park",
    "platform",
    "program",
    "center",
    "corridor",
    "fund",
    "base",
    "line",
    "facility",
    "hub",
    "campus",
    "zone",
    "route",
)
VERBS_PAST = (
    "launched",
    "unveiled",
    "opened",
    "completed",
    "signed off on",
    "expanded",
    "upgraded",
    "introduced",
    "put into operation",
    "broke ground on",
    "approved",
    "began building",
)
VERBS_BASE = (
    "improve",
    "expand",
    "strengthen",
    "speed up",
    "support",
    "attract",
    "upgrade",
    "promote",
    "streamline",
    "diversify",
    "modernize",
    "cut the cost of",
)
OBJECTS = (
    "the business environment",
    "foreign trade",
    "the supply of skilled workers",
    "services for small and medium-sized enterprises",
    "green development",
    "the night economy",
    "cooperation with Beijing and Hebei province",
    "port efficiency",
    "public transport",
    "the digital economy",
    "R&D investment",
    "cultural tourism",
    "food safety checks",
    "the city's industrial base",
    "access to healthcare",
    "waste sorting",
    "cold-chain capacity",
    "international flights",
    "startup financing",
    "the use of clean energy",
)
PURPOSES = (
    "aiming to attract more high-tech companies",
    "as part of efforts to boost consumption",
    "in a bid to cut logistics costs",
    "to serve companies along the coast",
    "to make life easier for residents",
    "to help local firms go global",
    "as the city pushes ahead with its green transition",
    "to draw young talent to the area",
    "to give visitors more reasons to stay overnight",
    "to support the real economy",
)
TIMES = (
    "on Monday",
    "on Tuesday",
    "on Wednesday",
    "on Thursday",
    "on Friday",
    "on Saturday",
    "on Sunday",
    "last week",
    "earlier this month",
    "this year",
    "recently",
    "last month",
)
PERIODS = (
    "first quarter",
    "first half of the year",
    "first seven months",
    "first 10 months",
    "past year",
    "second quarter",
    "January-May period",
    "first three quarters",
)
UNITS = (
    "million metric tons of cargo",
    "million TEUs",
    "thousand passengers",
    "thousand vehicles",
    "million visitors",
    "thousand shipments",
    "billion kilowatt-hours of electricity",
)
COMPANY_HEADS = (
    "Haixin",
    "Jinwan",
    "Bohai Qiyuan",
    "Tianrui",
    "Lianchuang",
    "Huaying",
    "Xinhe",
    "Ruida",
    "Jinqiao",
    "Haiyun",
    "Zhongshan Lanhai",
    "Chenguang",
    "Yuanhang",
    "Lingbo",
    "Hefeng",
)
COMPANY_TAILS = (
    "Robotics",
    "Logistics",
    "Biotech",
    "New Energy",
    "Materials",
    "Shipping",
    "Smart Equipment",
    "Data Technology",
    "Food",
    "Cultural Tourism",
    "Medical Devices",
    "Semiconductor",
)
SURNAMES = (
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yang",
    "Zhao",
    "Huang",
    "Zhou",
    "Wu",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "He",
    "Gao",
    "Lin",
    "Luo",
    "Zheng",
    "Liang",
    "Song",
    "Han",
)
GIVEN = (
    "Ming",
    "Hua",
    "Jing",
    "Lei",
    "Yan",
    "Tao",
    "Xin",
    "Qiang",
    "Li",
    "Jun",
    "Fang",
    "Hong",
    "Wei",
    "Yue",
    "Bo",
    "Peng",
    "Lan",
    "Rui",
    "Ning",
    "Hao",
    "Yifan",
    "Zihan",
    "Shuang",
    "Kai",
)
FOREIGN_FIRST = (
    "Peter",
    "Anna",
    "David",
    "Laura",
    "Mark",
    "Helen",
    "Tomas",
    "Ines",
    "Omar",
    "Kate",
)
FOREIGN_LAST = (
    "Whitfield",
    "Carroway",
    "Lindqvist",
    "Moreau",
    "Okafor",
    "Brennan",
    "Castellano",
    "Hartley",
)
ROLES = (
    "deputy director of {org}",
    "general manager of {company}",
    "a researcher at Nankai University",
    "a professor at Tianjin University",
    "a resident of {district}",
    "a visitor from Beijing",
    "head of {company}'s overseas business",
    "an official with {org}",
    "a shop owner in {district}",
    "chairman of {company}",
)
VENUES = (
    "the Tianjin Museum",
    "the Tianjin Grand Theater",
    "Haihe Culture Square",
    "the Tianjin Eye",
    "the National Maritime Museum of China",
    "Water Park",
    "the Binhai Library",
    "the Tianjin Binhai International Airport",
    "Jinwan Plaza",
    "the Porcelain House",
)
ACTIVITIES = (
    "watch traditional crosstalk shows",
    "try local snacks such as fried dough twists",
    "take a boat trip along the river",
    "visit riverside caf\u00e9s",
    "join guided heritage walks",
    "see light shows on the bridges",
    "browse intangible cultural heritage stalls",
    "attend free concerts",
    "cycle along the new greenway",
    "explore pop-up art markets",
)
ADJECTIVES = ("steady", "strong", "record", "rapid", "solid", "double-digit", "robust", "fresh")

SENTENCES = (
    "{Org} {verb_past} {project} in {place} {time}, {purpose}.",
    "{Place} handled {number} {unit} in the {period}, up {pct} percent year-on-year, according to {org}.",
    '"We will {verb_base} {object} so that more companies can benefit," said {person}, {role}.',
    "The {project_noun} is expected to {verb_base} {object} by {year}.",
    "More than {count} companies in the {sector} sector have set up operations in {place}, {org} said.",
    "{Person}, {role}, said the city would continue to {verb_base} {object}.",
    "Visitors can {activity} at {venue} {time}.",
    "Total investment in the project has reached {money}, {org} said.",
    "In the {period}, output of {sector} in {place} rose {pct} percent.",
    "Officials said the move would help {verb_base} {object} and {verb_base} {object}.",
    "{Company} plans to hire about {count} more engineers this year \u2014 most of them graduates of local universities.",
    "The first phase, covering {area} square meters, is scheduled to open in {year}.",
    "According to {person}, {role}, demand for {sector} has grown faster than expected.",
    "\"It's the busiest season we've had in years,\" said {person}, {role}.",
    "{Place}'s {sector} industry generated revenue of {money} in the {period}.",
    "The event, which runs until the end of the month, features more than {count} exhibitors.",
    "Some {count} residents took part in the program {time}, local media reported.",
    "{Company}, which is based in {place} and works in {sector}, signed a cooperation agreement with {org} {time}.",
    "The new route cuts travel time between {place} and {place2} to about {minutes} minutes.",
    "{Org} also pledged to {verb_base} {object} over the next {small} years.",
    "Residents said the changes had made {object} far more convenient.",
    "The city aims to {verb_base} {object}, with {count} key projects listed for this year.",
)
TITLES = (
    "{Short} {title_verb} {title_object}",
    "{Sector} firms flock to {short}",
    "{Short} sees {adjective} growth in {sector}",
    "New {project_noun} opens in {short}",
    "{Short} port throughput hits {adjective} high",
    "Tianjin's {sector} sector gains momentum",
    "{Short} {title_verb} {title_object} to {verb_base} {object}",
    "Summer events draw crowds to {venue}",
    "{Company} expands {sector} capacity in {short}",
    "Night markets light up {short} riverside",
    "{Short} rolls out measures to {verb_base} {object}",
    "Tianjin, Hebei deepen ties in {sector}",
)
TITLE_VERBS = ("launches", "unveils", "opens", "expands", "upgrades", "builds", "plans", "boosts")
TITLE_OBJECTS = (
    "innovation hub",
    "smart terminal",
    "logistics park",
    "green energy base",
    "talent program",
    "R&D platform",
    "cultural festival",
    "sea-rail route",
    "data center",
    "trade service center",
)
CAPTION_DESCRIPTIONS = (
    "Workers check containers at a terminal",
    "Visitors tour an exhibition",
    "A robotic arm assembles parts at a factory",
    "Tourists take photos by the river",
    "Performers take part in a folk parade",
    "Cargo ships berth at the port",
    "Students visit a science hall",
    "A high-speed train leaves the station",
)
PHOTO_ORGS = ("Xinhua", "chinadaily.com.cn", "exploringtianjin.com", "Tianjin Daily", "IC", "VCG")

# Chinese sentence parts (GBK-encodable characters only, for the GBK fault pages).
ZH_TIMES = ("今年以来", "近日", "上半年", "截至目前", "去年", "本月初", "日前", "近年来")
ZH_PLACES = (
    "天津港",
    "滨海新区",
    "西青区",
    "南开区",
    "和平区",
    "海河沿线",
    "中新天津生态城",
    "东疆港区",
    "武清区",
    "津南区",
    "于家堡",
    "北辰区",
)
ZH_VERBS = ("启动了", "建成了", "签约了", "推出了", "升级了", "开放了", "新增了")
ZH_PROJECTS = (
    "智慧码头项目",
    "创新服务中心",
    "冷链物流园区",
    "氢能示范工程",
    "夜间文旅街区",
    "国际航线",
    "人才服务驿站",
    "公共实验平台",
    "绿色低碳产业园",
    "海铁联运通道",
)
ZH_AIMS = (
    "进一步提升城市服务能力",
    "助力企业扩大出口",
    "吸引更多青年人才",
    "推动产业转型升级",
    "丰富市民文化生活",
    "降低企业物流成本",
    "优化营商环境",
)
ZH_ORGS = (
    "市商务局",
    "区政府有关负责人",
    "港口集团",
    "市文化和旅游局",
    "相关企业负责人",
    "市统计局",
)
ZH_SAYS = (
    "将继续优化营商环境",
    "下一步将加快项目建设进度",
    "今年计划新增一批重点项目",
    "将为企业提供更加便利的服务",
    "相关工作正在有序推进",
)
ZH_METRICS = ("集装箱吞吐量", "外贸进出口总额", "游客接待量", "新能源汽车产量", "工业增加值")
ZH_TITLES = ("天津港吞吐量创新高", "海河夜游持续升温", "滨海新区发布新政策", "津门文化周开幕")

_SLOT = re.compile(r"\{(\w+)\}")


class Writer:
    """Fills sentence frames from a ``random.Random``; the same generator state gives the same text."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def person(self) -> str:
        r = self.rng
        if r.random() < 0.12:
            return f"{r.choice(FOREIGN_FIRST)} {r.choice(FOREIGN_LAST)}"
        given = r.choice(GIVEN)
        if r.random() < 0.5:
            given += r.choice(GIVEN).lower()
        return f"{r.choice(SURNAMES)} {given}"

    def company(self) -> str:
        r = self.rng
        return f"{r.choice(COMPANY_HEADS)} {r.choice(COMPANY_TAILS)}"

    def _slot(self, name: str) -> str:
        r = self.rng
        lower = name[0].lower() + name[1:]
        value: str
        if lower == "org":
            value = r.choice(ORGS)
        elif lower in ("place", "place2"):
            value = r.choice(PLACES)
        elif lower == "short":
            value = r.choice(SHORT_PLACES)
        elif lower == "sector":
            value = r.choice(SECTORS)
        elif lower == "project":
            value = r.choice(PROJECTS)
        elif lower == "project_noun":
            value = r.choice(PROJECT_NOUNS)
        elif lower == "verb_past":
            value = r.choice(VERBS_PAST)
        elif lower == "verb_base":
            value = r.choice(VERBS_BASE)
        elif lower == "object":
            value = r.choice(OBJECTS)
        elif lower == "purpose":
            value = r.choice(PURPOSES)
        elif lower == "time":
            value = r.choice(TIMES)
        elif lower == "period":
            value = r.choice(PERIODS)
        elif lower == "unit":
            value = r.choice(UNITS)
        elif lower == "number":
            value = f"{r.randrange(2, 990)}.{r.randrange(10)}"
        elif lower == "pct":
            value = f"{r.randrange(1, 40)}.{r.randrange(10)}"
        elif lower == "count":
            value = f"{r.randrange(12, 4000):,}"
        elif lower == "small":
            value = str(r.randrange(2, 6))
        elif lower == "minutes":
            value = str(r.randrange(18, 95))
        elif lower == "area":
            value = f"{r.randrange(5, 400) * 1000:,}"
        elif lower == "year":
            value = str(r.randrange(2025, 2031))
        elif lower == "money":
            yuan = r.randrange(11, 990) / 10
            value = f"{yuan:.1f} billion yuan (${yuan * 138:,.0f} million)"
        elif lower == "person":
            value = self.person()
        elif lower == "company":
            value = self.company()
        elif lower == "district":
            value = r.choice(SHORT_PLACES[1:]) + " district"
        elif lower == "role":
            value = self.fill(r.choice(ROLES))
        elif lower == "venue":
            value = r.choice(VENUES)
        elif lower == "activity":
            value = r.choice(ACTIVITIES)
        elif lower == "adjective":
            value = r.choice(ADJECTIVES)
        elif lower == "title_verb":
            value = r.choice(TITLE_VERBS)
        elif lower == "title_object":
            value = r.choice(TITLE_OBJECTS)
        else:  # pragma: no cover - a typo in a frame
            raise KeyError(name)
        if name[0].isupper():
            value = value[0].upper() + value[1:]
        return value

    def fill(self, frame: str) -> str:
        return _SLOT.sub(lambda m: self._slot(m[1]), frame)

    def sentence(self) -> str:
        return self.fill(self.rng.choice(SENTENCES))

    def paragraph(self) -> str:
        """Display text of one English paragraph (2-5 sentences), typography varied per paragraph."""
        r = self.rng
        # Frames drawn without replacement, so a paragraph never repeats one.
        text = " ".join(self.fill(frame) for frame in r.sample(SENTENCES, r.randrange(2, 6)))
        if r.random() < 0.45:
            text = _curly(text)
        if r.random() < 0.15:
            # Decomposed accents: NFC (applied by clean_text) must recompose them.
            text = text.replace("\u00e9", "e\u0301")
        return text

    def title(self) -> str:
        r = self.rng
        text = self.fill(r.choice(TITLES))
        text = text[0].upper() + text[1:]
        if r.random() < 0.3:
            text = _curly(text)
        return text

    def caption(self, descriptive: bool) -> str:
        r = self.rng
        roll = r.random()
        if roll < 0.35:
            inner = f"Photo/{r.choice(PHOTO_ORGS)}"
        elif roll < 0.7:
            inner = f"Photo by {self.person()}/{r.choice(('chinadaily.com.cn', 'For China Daily', 'exploringtianjin.com'))}"
        elif roll < 0.9:
            inner = f"Photo provided to {r.choice(('chinadaily.com.cn', 'exploringtianjin.com'))}"
        else:
            inner = f"Photo/{self.person()}"
        caption = f"[{inner}]"
        if descriptive:
            caption = f"{r.choice(CAPTION_DESCRIPTIONS)} in {r.choice(PLACES)} {r.choice(TIMES)}. {caption}"
        return caption

    def chinese_paragraph(self) -> str:
        r = self.rng
        parts = []
        for _ in range(r.randrange(2, 5)):
            roll = r.random()
            if roll < 0.4:
                parts.append(
                    f"{r.choice(ZH_TIMES)}，{r.choice(ZH_PLACES)}{r.choice(ZH_VERBS)}"
                    f"{r.choice(ZH_PROJECTS)}，{r.choice(ZH_AIMS)}。"
                )
            elif roll < 0.7:
                parts.append(f"{r.choice(ZH_ORGS)}表示，{r.choice(ZH_SAYS)}。")
            else:
                parts.append(
                    f"数据显示，{r.choice(ZH_PLACES)}{r.choice(ZH_METRICS)}同比增长"
                    f"{r.randrange(1, 30)}.{r.randrange(10)}%。"
                )
        return "".join(parts)

    def chinese_title(self) -> str:
        return self.rng.choice(ZH_TITLES)


def _curly(text: str) -> str:
    """Typographic quotes and apostrophes, as pasted from a word processor."""
    text = re.sub(r"(?<=\w)'", "\u2019", text)
    out = []
    opening = True
    for ch in text:
        if ch == '"':
            out.append("\u201c" if opening else "\u201d")
            opening = not opening
        else:
            out.append(ch)
    return "".join(out)
