"""Deterministic fake-but-plausible Chinese names, phone numbers and ID numbers."""

from __future__ import annotations

import numpy as np

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
# weights: the big surnames are much more frequent
_SURNAME_W = np.array([1.0 / (1 + 0.08 * i) for i in range(len(SURNAMES))])
_SURNAME_P = _SURNAME_W / _SURNAME_W.sum()

GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕彩春菊辉鹏斌宇浩凯健俊帆帅旭宁"
    "琳晨欣怡婷雪梅莉颖倩琴云峰建国志文海波成龙德胜永红利民庆福荣祥贵林小金凤淑珍秋月翠萍新"
)

# (character, pinyin) pairs for place names: community, street office, estate and street names.
PLACE = [
    ("金", "Jin"),
    ("湖", "Hu"),
    ("山", "Shan"),
    ("雨", "Yu"),
    ("花", "Hua"),
    ("佳", "Jia"),
    ("采", "Cai"),
    ("石", "Shi"),
    ("江", "Jiang"),
    ("东", "Dong"),
    ("西", "Xi"),
    ("南", "Nan"),
    ("北", "Bei"),
    ("桃", "Tao"),
    ("园", "Yuan"),
    ("新", "Xin"),
    ("安", "An"),
    ("宁", "Ning"),
    ("和", "He"),
    ("平", "Ping"),
    ("康", "Kang"),
    ("福", "Fu"),
    ("泰", "Tai"),
    ("丰", "Feng"),
    ("华", "Hua"),
    ("阳", "Yang"),
    ("光", "Guang"),
    ("明", "Ming"),
    ("春", "Chun"),
    ("秀", "Xiu"),
    ("翠", "Cui"),
    ("林", "Lin"),
    ("霞", "Xia"),
    ("云", "Yun"),
    ("松", "Song"),
    ("竹", "Zhu"),
    ("梅", "Mei"),
    ("兰", "Lan"),
    ("荷", "He"),
    ("柳", "Liu"),
    ("银", "Yin"),
    ("塘", "Tang"),
    ("印", "Yin"),
    ("当", "Dang"),
    ("博", "Bo"),
    ("望", "Wang"),
    ("慈", "Ci"),
    ("湾", "Wan"),
    ("霍", "Huo"),
    ("里", "Li"),
    ("向", "Xiang"),
    ("解", "Jie"),
    ("放", "Fang"),
    ("红", "Hong"),
    ("旗", "Qi"),
    ("朝", "Chao"),
    ("九", "Jiu"),
    ("太", "Tai"),
    ("白", "Bai"),
    ("嘉", "Jia"),
    ("瑞", "Rui"),
    ("锦", "Jin"),
    ("绣", "Xiu"),
    ("天", "Tian"),
    ("门", "Men"),
    ("宝", "Bao"),
    ("庆", "Qing"),
    ("盛", "Sheng"),
    ("景", "Jing"),
    ("月", "Yue"),
    ("星", "Xing"),
    ("港", "Gang"),
]

ESTATE_SUFFIX = [
    ("小区", "Estate"),
    ("花园", "Garden"),
    ("苑", "Court"),
    ("新村", "New Village"),
    ("家园", "Homes"),
    ("公寓", "Apartments"),
    ("名城", "City"),
]

ARTERIAL_NAMES = [
    ("湖东路", "Hudong Road"),
    ("雨山路", "Yushan Road"),
    ("佳山路", "Jiashan Road"),
    ("湖北路", "Hubei Road"),
    ("解放路", "Jiefang Road"),
    ("红旗路", "Hongqi Road"),
    ("太白大道", "Taibai Avenue"),
    ("九华路", "Jiuhua Road"),
    ("湖南路", "Hunan Road"),
    ("印山路", "Yinshan Road"),
    ("花园路", "Huayuan Road"),
    ("朝阳路", "Chaoyang Road"),
    ("采石路", "Caishi Road"),
    ("江东大道", "Jiangdong Avenue"),
    ("天门大道", "Tianmen Avenue"),
    ("霍里山大道", "Huolishan Avenue"),
    ("湖西路", "Huxi Road"),
    ("秀山路", "Xiushan Road"),
    ("慈湖路", "Cihu Road"),
    ("宁芜路", "Ningwu Road"),
    ("博望大道", "Bowang Avenue"),
    ("丹阳路", "Danyang Road"),
    ("凌家滩路", "Lingjiatan Road"),
    ("万达路", "Wanda Road"),
]


def place_names(rng: np.random.Generator, n: int, taken: set[str] | None = None) -> list[tuple[str, str]]:
    """``n`` distinct two-character place names ``(zh, pinyin)``."""
    taken = set() if taken is None else taken
    out: list[tuple[str, str]] = []
    while len(out) < n:
        i, j = rng.integers(0, len(PLACE), 2)
        if i == j:
            continue
        zh = PLACE[i][0] + PLACE[j][0]
        if zh in taken:
            continue
        taken.add(zh)
        out.append((zh, PLACE[i][1] + PLACE[j][1].lower()))
    return out


def person_names(rng: np.random.Generator, n: int) -> list[str]:
    """Draw ``n`` Chinese personal names (common surnames more often)."""
    s = rng.choice(len(SURNAMES), size=n, p=_SURNAME_P)
    two = rng.random(n) < 0.7
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = rng.integers(0, len(GIVEN), n)
    return [
        SURNAMES[a] + GIVEN[b] + (GIVEN[c] if t else "") for a, b, c, t in zip(s, g1, g2, two, strict=True)
    ]


_PREFIXES = np.array(
    [
        "139",
        "138",
        "137",
        "136",
        "135",
        "158",
        "159",
        "187",
        "188",
        "151",
        "152",
        "182",
        "183",
        "180",
        "181",
        "189",
        "133",
        "153",
        "177",
        "199",
    ]
)


def phones(rng: np.random.Generator, n: int) -> list[str]:
    """Draw ``n`` 11-digit mobile numbers with real carrier prefixes."""
    pre = rng.choice(_PREFIXES, size=n, p=None)
    rest = rng.integers(0, 100_000_000, n)
    return [f"{p}{r:08d}" for p, r in zip(pre, rest, strict=True)]


_ID_W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """Return the ISO 7064 MOD 11-2 check character of a Chinese resident ID number."""
    total = sum(int(c) * w for c, w in zip(first17, _ID_W, strict=True))
    return _ID_CHECK[total % 11]


def id_numbers(
    rng: np.random.Generator, region: list[str], birth_year_lo: np.ndarray, birth_year_hi: np.ndarray
) -> list[str]:
    """18-digit resident ID numbers: region(6) + YYYYMMDD + sequence(3) + check digit."""
    n = len(region)
    year = rng.integers(birth_year_lo, birth_year_hi + 1)
    month = rng.integers(1, 13, n)
    day = rng.integers(1, 29, n)
    seq = rng.integers(1, 1000, n)
    out = []
    for r, y, m, d, s in zip(region, year, month, day, seq, strict=True):
        first = f"{r}{y:04d}{m:02d}{d:02d}{s:03d}"
        out.append(first + id_check_digit(first))
    return out
