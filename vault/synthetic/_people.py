"""Deterministic, realistic synthetic Chinese customers.

Everything comes from one ``random.Random(seed)`` (never the global generator), consumed the same
way for every customer whatever ``count`` is, so ``generate_customers(10, seed=s)`` is the first
ten of ``generate_customers(1000, seed=s)``.

Uniqueness is by construction, not by remembering what was handed out (memory stays flat in
``count``): customer ``i`` gets the ``i``-th value of three seeded permutations, one over every
phone number the generator can make, one over the email numbers and one over (birth date,
sequence number) pairs. So phones, emails and ID numbers never repeat within one stream of up to
:data:`MAX_COUNT` customers, yet consecutive customers do not look consecutive.

The hot path calls neither ``phonenumbers`` nor ``stdnum``: prefixes are taken from the
mobile ranges ``phonenumbers`` accepts for CN, the ID check digit is computed here, and the
area code of an ID is drawn among the codes the packaged extract marks as accepted by
``stdnum.cn.ric`` for the birth year (its ``id_years`` column).
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from itertools import accumulate
from typing import TypeVar

from vault.synthetic._divisions import Division, divisions

REFERENCE_DATE = date(2026, 1, 1)
"""Ages are computed against this fixed date, not today, so a seed means the same people forever."""
MIN_AGE = 18
MAX_AGE = 75
LATEST_BIRTH = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - MIN_AGE)
EARLIEST_BIRTH = REFERENCE_DATE.replace(year=REFERENCE_DATE.year - MAX_AGE - 1) + timedelta(days=1)
BIRTH_DAYS = (LATEST_BIRTH - EARLIEST_BIRTH).days + 1

ID_SEQUENCES = 999
"""Sequence numbers 001–999 (odd: male, even: female)."""

SAME_COUNTY_SHARE = 0.7
"""How often the address is in the county whose code begins the ID number; otherwise the
customer has moved to some other county (drawn like any other: by province population)."""

# Three-digit mobile prefixes of China Mobile, Unicom and Telecom (no virtual-operator ranges
# such as 170/171/165), every one of which phonenumbers' CN metadata accepts as MOBILE for all
# 8-digit subscriber numbers: 13x, 15[0-35-9], 166, 17[235-8], 18x, 19[135789]. 42 prefixes
# keep the phone space (4.2e9) inside 32 bits, so the permutation over it rarely cycle-walks.
MOBILE_PREFIXES = (
    *(f"13{d}" for d in range(10)),
    *(f"15{d}" for d in (0, 1, 2, 3, 5, 6, 7, 8, 9)),
    "166",
    *(f"17{d}" for d in (2, 3, 5, 6, 7, 8)),
    *(f"18{d}" for d in range(10)),
    *(f"19{d}" for d in (1, 3, 5, 7, 8, 9)),
)
SUBSCRIBERS = 10**8

EMAIL_NUMBERS = 1 << 24
QQ_NUMBER_BASE = 10_000
"""QQ numbers start at five digits."""

MAX_COUNT = min(EMAIL_NUMBERS, BIRTH_DAYS * ID_SEQUENCES, len(MOBILE_PREFIXES) * SUBSCRIBERS)
"""The longest stream in which phones, emails and ID numbers are guaranteed unique."""


@dataclass(frozen=True, slots=True)
class SyntheticCustomer:
    """One made-up customer whose fields agree with each other.

    ``id_number`` begins with a real county code from the packaged extract, encodes
    ``birthday`` and ``gender`` and carries a correct check digit; ``address`` lies in that
    county about 70% of the time.
    """

    name: str
    phone: str
    email: str
    id_number: str
    birthday: str
    gender: str
    address: str
    province: str
    city: str


def generate_customers(count: int, *, seed: int = 0) -> Iterator[SyntheticCustomer]:
    """``count`` synthetic customers, deterministic for ``seed``, produced lazily.

    Phones, emails and ID numbers are unique within the stream (``count`` at most
    :data:`MAX_COUNT`). Memory does not grow with ``count``.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be a non-negative integer, not {count!r}")
    if count > MAX_COUNT:
        raise ValueError(f"count must be at most {MAX_COUNT:,} for unique phones and emails")
    return _generate(count, random.Random(seed))


# --- uniqueness by construction ------------------------------------------------------------------


class _Permutation:
    """A seeded bijection of ``range(size)``: a four-round Feistel network on the smallest
    power of two that holds ``size``, cycle-walked back into range.

    Any round function gives a bijection; this one only has to scatter values so that customer
    ``i + 1`` does not visibly follow customer ``i``. Cycle walking (re-applying the network
    until the value falls below ``size``) keeps it a bijection of ``range(size)``.
    """

    __slots__ = ("_left_bits", "_right_bits", "_rounds", "_size")

    _MIX = 0x9E3779B97F4A7C15

    def __init__(self, size: int, rng: random.Random) -> None:
        bits = max(2, (size - 1).bit_length())
        self._size = size
        self._left_bits = (bits + 1) // 2
        self._right_bits = bits // 2
        # The halves trade places (and widths) every round; four rounds restore the layout.
        widths = (self._left_bits, self._right_bits) * 2
        self._rounds = tuple((rng.getrandbits(32), (1 << width) - 1) for width in widths)

    def __call__(self, value: int) -> int:
        right_bits = self._right_bits
        right_mask = (1 << right_bits) - 1
        mix = self._MIX
        while True:
            left, right = value >> right_bits, value & right_mask
            for key, mask in self._rounds:
                left, right = right, left ^ (((right ^ key) * mix >> 29) & mask)
            value = (left << right_bits) | right
            if value < self._size:
                return value


T = TypeVar("T")


def _pick(random_: Callable[[], float], items: Sequence[T]) -> T:
    """``random.choice`` for the hot path: one float instead of rejection-sampled bits."""
    return items[int(random_() * len(items))]


def id_check_digit(body: str) -> str:
    """ISO 7064 MOD 11-2 check character of a 17-digit resident ID body.

    The weights are 2**(17 - position) mod 11, and 13 ≡ 2 (mod 11), so the weighted sum is
    ``2 * int(body, 13)`` modulo 11: one C-level conversion instead of a Python loop.
    """
    checksum = (1 - 2 * int(body, 13)) % 11
    return "X" if checksum == 10 else str(checksum)


# --- names and emails ----------------------------------------------------------------------------

Named = tuple[str, str]
"""(Chinese text, pinyin)."""


def _words(spec: str) -> tuple[str, ...]:
    return tuple(spec.split())


def _pairs(spec: str) -> tuple[Named, ...]:
    """``"王 wang 李 li"`` → ``(("王", "wang"), ("李", "li"))``."""
    words = _words(spec)
    return tuple(zip(words[::2], words[1::2], strict=True))


# The most common surnames, most frequent first, with a rough weight (share in tenths of a
# percent); then compound surnames, rarer still (about 1.4% together, far above life, so that
# masks and search meet them).
_COMMON_SURNAMES = _pairs(
    """王 wang 李 li 张 zhang 刘 liu 陈 chen 杨 yang 黄 huang 赵 zhao 吴 wu 周 zhou
    徐 xu 孙 sun 马 ma 朱 zhu 胡 hu 郭 guo 何 he 林 lin 高 gao 罗 luo
    郑 zheng 梁 liang 谢 xie 宋 song 唐 tang 许 xu 邓 deng 韩 han 冯 feng 曹 cao
    彭 peng 曾 zeng 肖 xiao 田 tian 董 dong 潘 pan 袁 yuan 蔡 cai 蒋 jiang 余 yu
    于 yu 杜 du 叶 ye 程 cheng 魏 wei 苏 su 吕 lv 丁 ding 任 ren 卢 lu
    姚 yao 沈 shen 钟 zhong 姜 jiang 崔 cui 谭 tan 陆 lu 范 fan 汪 wang 廖 liao
    石 shi 金 jin 韦 wei 贾 jia 夏 xia 付 fu 方 fang 邹 zou 熊 xiong 白 bai
    孟 meng 秦 qin 邱 qiu 侯 hou 江 jiang 尹 yin 薛 xue 闫 yan 段 duan 雷 lei
    龙 long 黎 li 史 shi 陶 tao 贺 he 毛 mao 郝 hao 顾 gu 龚 gong 邵 shao
    万 wan 覃 qin 武 wu 钱 qian 戴 dai 严 yan 莫 mo 孔 kong 向 xiang 常 chang
    汤 tang 康 kang 易 yi 乔 qiao 赖 lai 文 wen"""
)
_COMMON_WEIGHTS = (
    (72, 72, 69, 54, 45, 31, 22, 22, 20, 19)
    + (17, 15, 15, 14, 13, 13, 12, 12, 12, 12)
    + (10, 9, 8, 8, 8, 8, 8, 7, 7, 6)
    + (6, 6, 6, 5, 5, 5, 5, 5, 5, 5)
    + (4,) * 20
    + (3,) * 20
    + (2,) * 26
)
_COMPOUND_SURNAMES = _pairs(
    """欧阳 ouyang 司马 sima 上官 shangguan 诸葛 zhuge 东方 dongfang 皇甫 huangfu
    慕容 murong 令狐 linghu 夏侯 xiahou 司徒 situ 公孙 gongsun 尉迟 yuchi"""
)
_COMPOUND_WEIGHT = 1
SURNAMES = _COMMON_SURNAMES + _COMPOUND_SURNAMES
_SURNAME_CUMULATIVE = tuple(
    accumulate(
        weight
        for _, weight in zip(
            SURNAMES,
            (*_COMMON_WEIGHTS, *(_COMPOUND_WEIGHT,) * len(_COMPOUND_SURNAMES)),
            strict=True,  # one weight per surname
        )
    )
)

_NEUTRAL = _pairs(
    "子 zi 嘉 jia 一 yi 文 wen 晓 xiao 春 chun 秋 qiu 新 xin 永 yong 金 jin 思 si 晨 chen"
)
MALE_GIVEN = _NEUTRAL + _pairs(
    """伟 wei 强 qiang 磊 lei 军 jun 勇 yong 杰 jie 涛 tao 斌 bin 超 chao 明 ming
    刚 gang 平 ping 辉 hui 鹏 peng 飞 fei 鑫 xin 波 bo 宇 yu 浩 hao 凯 kai
    健 jian 俊 jun 帆 fan 帅 shuai 旭 xu 龙 long 林 lin 峰 feng 建 jian 国 guo
    志 zhi 博 bo 睿 rui 轩 xuan 泽 ze 航 hang 毅 yi 东 dong 海 hai 亮 liang
    成 cheng 然 ran 阳 yang 振 zhen 威 wei 昊 hao 天 tian 德 de 荣 rong 庆 qing
    卫 wei 彬 bin 雄 xiong 松 song 立 li 锋 feng 宏 hong 华 hua 福 fu 生 sheng"""
)
FEMALE_GIVEN = _NEUTRAL + _pairs(
    """芳 fang 娜 na 敏 min 静 jing 丽 li 艳 yan 娟 juan 霞 xia 秀 xiu 玲 ling
    桂 gui 英 ying 红 hong 燕 yan 梅 mei 琳 lin 婷 ting 雪 xue 慧 hui 颖 ying
    倩 qian 洁 jie 欣 xin 怡 yi 佳 jia 萱 xuan 涵 han 悦 yue 琪 qi 诗 shi
    雨 yu 梓 zi 晶 jing 瑶 yao 璐 lu 兰 lan 凤 feng 莉 li 萍 ping 华 hua
    丹 dan 蕾 lei 薇 wei 云 yun 月 yue 珊 shan 露 lu 楠 nan 可 ke 馨 xin 玉 yu"""
)
_TWO_CHARACTER_GIVEN_SHARE = 0.6

_NICKNAMES = _words(
    """sunny lucky tiger happy angel kevin jack tony amy lily coco kiki leo max
    panda apple candy star moon summer rain snow echo jason eric alex vivian cindy"""
)
# Weighted by repetition: the big domestic free-mail providers first.
EMAIL_DOMAINS = (
    ("qq.com",) * 7
    + ("163.com",) * 5
    + ("126.com",) * 2
    + ("sina.com",) * 1
    + ("gmail.com",) * 2
    + ("outlook.com",) * 2
)
_QQ_NUMBER_SHARE = 0.5
"""Of the qq.com addresses, how many are the bare QQ number."""
_SEPARATORS = ("",) * 6 + ("_", ".")


def _email_local(
    random_: Callable[[], float], surname: str, given: Sequence[str], number: int
) -> str:
    """A lower-case local part: letters from the name (or a nickname), then ``number``.

    ``number`` is unique per customer and always ends the local part after letters that never
    end in a digit, so two customers can never share an address, whatever the letters are.
    """
    style = int(random_() * 7)
    given_full = "".join(given)
    if style == 0:
        letters = surname + given_full
    elif style == 1:
        letters = given_full + "." + surname
    elif style == 2:
        letters = surname + "_" + given_full
    elif style == 3:
        letters = surname[0] + "".join(part[0] for part in given)
    elif style == 4:
        letters = surname + "".join(part[0] for part in given)
    elif style == 5:
        letters = given_full + surname
    else:
        letters = _pick(random_, _NICKNAMES)
    return letters + _pick(random_, _SEPARATORS) + str(number)


# --- addresses -----------------------------------------------------------------------------------

ROAD_STEMS = _words(
    """人民 解放 中山 建设 和平 新华 文化 胜利 长江 黄河 朝阳 光明 幸福 团结 友谊 青年 东风
    红旗 工业 建国 府前 学院 科技园 花园 滨江 滨河 湖滨 公园 体育 迎宾 东环 西环 南环 北环
    新民 育才 复兴 振兴 兴业 金融 商业 园林 翠微 望江 龙泉 凤凰 桂花 梧桐 紫荆 银杏 玉兰
    海棠 青松 春晖 锦绣 星光 北京 上海 南京 广州 延安 健康 民主 新村 站前 沿江 环城 东兴"""
)
ROAD_SUFFIXES = (
    ("路",) * 10
    + ("街",) * 3
    + ("大道",) * 2
    + ("大街",) * 2
    + (
        "东路",
        "西路",
        "南路",
        "北路",
    )
)
_UNIT_SHARE = 0.5
"""How many addresses go down to the flat (3栋1502室) rather than stop at the street number."""


# Population by province in the 2020 census, in hundred thousands: where people are drawn from.
PROVINCE_POPULATION = {
    "广东省": 1260,
    "山东省": 1015,
    "河南省": 994,
    "江苏省": 847,
    "四川省": 837,
    "河北省": 746,
    "湖南省": 664,
    "浙江省": 646,
    "安徽省": 610,
    "湖北省": 578,
    "广西壮族自治区": 501,
    "云南省": 472,
    "江西省": 452,
    "辽宁省": 426,
    "福建省": 415,
    "陕西省": 395,
    "贵州省": 386,
    "山西省": 349,
    "重庆市": 321,
    "黑龙江省": 319,
    "新疆维吾尔自治区": 259,
    "甘肃省": 250,
    "上海市": 249,
    "吉林省": 241,
    "内蒙古自治区": 240,
    "北京市": 219,
    "天津市": 139,
    "海南省": 101,
    "宁夏回族自治区": 72,
    "青海省": 59,
    "西藏自治区": 36,
}


@dataclass(frozen=True, slots=True)
class _AreaDraw:
    """Counties grouped by province, provinces weighted by population: draw one county."""

    cumulative: tuple[int, ...]
    groups: tuple[tuple[Division, ...], ...]

    @classmethod
    def of(cls, areas: Sequence[Division]) -> _AreaDraw:
        by_province: dict[str, list[Division]] = {}
        for area in areas:
            by_province.setdefault(area.province, []).append(area)
        names = sorted(by_province, key=lambda name: -PROVINCE_POPULATION[name])
        return cls(
            cumulative=tuple(accumulate(PROVINCE_POPULATION[name] for name in names)),
            groups=tuple(tuple(by_province[name]) for name in names),
        )

    def __call__(self, random_: Callable[[], float]) -> Division:
        group = self.groups[bisect(self.cumulative, random_() * self.cumulative[-1])]
        return _pick(random_, group)


@cache
def _area_draws() -> tuple[_AreaDraw, dict[int, _AreaDraw]]:
    """Where customers live, and, by birth year, where their ID numbers can come from.

    ``stdnum.cn.ric`` rejects an ID whose area code did not exist in the birth year (by its
    tables most of today's codes date from 1983 or later), so an ID draws only among the codes
    the extract marks as accepted for that year; its province is still drawn by population,
    among the provinces that have such codes.
    """
    areas = divisions()
    by_year = {
        year: _AreaDraw.of([area for area in areas if area.accepts_birth_year(year)])
        for year in range(EARLIEST_BIRTH.year, LATEST_BIRTH.year + 1)
    }
    return _AreaDraw.of(areas), by_year


def _generate(count: int, rng: random.Random) -> Iterator[SyntheticCustomer]:
    phone_of = _Permutation(len(MOBILE_PREFIXES) * SUBSCRIBERS, rng)
    email_of = _Permutation(EMAIL_NUMBERS, rng)
    birth_of = _Permutation(BIRTH_DAYS * ID_SEQUENCES, rng)
    any_area, id_area_of_year = _area_draws()
    first_day = EARLIEST_BIRTH.toordinal()
    surname_total = _SURNAME_CUMULATIVE[-1]
    random_ = rng.random

    for index in range(count):
        # Birth date, sequence number, gender: one unique pair per customer.
        birth_key = birth_of(index)
        born = date.fromordinal(first_day + birth_key // ID_SEQUENCES)
        sequence = birth_key % ID_SEQUENCES + 1
        male = sequence % 2 == 1
        birthday = born.isoformat()
        id_area = id_area_of_year[born.year](random_)
        body = f"{id_area.code}{birthday.replace('-', '')}{sequence:03d}"

        surname, surname_pinyin = SURNAMES[bisect(_SURNAME_CUMULATIVE, random_() * surname_total)]
        pool = MALE_GIVEN if male else FEMALE_GIVEN
        given_name, given_pinyin = _pick(random_, pool)
        syllables = [given_pinyin]
        if random_() < _TWO_CHARACTER_GIVEN_SHARE:
            second, second_pinyin = _pick(random_, pool)
            given_name += second
            syllables.append(second_pinyin)

        subscriber = phone_of(index)
        prefix = MOBILE_PREFIXES[subscriber // SUBSCRIBERS]
        phone = f"{prefix}{subscriber % SUBSCRIBERS:08d}"

        email_number = email_of(index)
        domain = _pick(random_, EMAIL_DOMAINS)
        if domain == "qq.com" and random_() < _QQ_NUMBER_SHARE:
            local = str(QQ_NUMBER_BASE + email_number)
        else:
            local = _email_local(random_, surname_pinyin, syllables, email_number)

        home = id_area
        if random_() >= SAME_COUNTY_SHARE:
            while home is id_area:
                home = any_area(random_)
        street = _pick(random_, home.streets) if home.streets else ""
        number = 1 + int(random_() ** 2 * 400)
        unit = ""
        if random_() < _UNIT_SHARE:
            building = 1 + int(random_() * 30)
            floor = 1 + int(random_() * 33)
            flat = 1 + int(random_() * 6)
            unit = f"{building}栋{floor}{flat:02d}室"
        road = _pick(random_, ROAD_STEMS) + _pick(random_, ROAD_SUFFIXES)

        yield SyntheticCustomer(
            name=surname + given_name,
            phone=phone,
            email=f"{local}@{domain}",
            id_number=body + id_check_digit(body),
            birthday=birthday,
            gender="male" if male else "female",
            address=f"{home.locality}{street}{road}{number}号{unit}",
            province=home.province,
            city=home.city,
        )
