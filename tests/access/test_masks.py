from __future__ import annotations

import pytest

from vault.access.masks import mask


@pytest.mark.parametrize(
    ("style", "value", "masked"),
    [
        ("phone", "+8613800138000", "138****8000"),
        ("phone", "+442079460958", "442*****0958"),
        ("email", "zhang@qq.com", "z***@qq.com"),
        ("email", "Z@qq.com", "Z***@qq.com"),
        ("name", "张三", "张*"),
        ("name", "张小明", "张**"),
        ("name", "欧阳娜娜", "欧阳**"),
        ("name", "Zhang Wei", "Z**** W**"),
        ("id_number", "110101199003071234", "110101********1234"),
        ("id_number", "11010519491231002X", "110105********002X"),
        ("address", "广东省深圳市南山区粤海街道科技园路18号", "广东省深圳市***"),
        ("address", "北京市东城区东华门街道南池子大街7号", "北京市***"),
        ("address", "somewhere unknown 123", "***"),
        ("date", "1990-03-07", "1990-**-**"),
        ("partial", "6222021234567890", "************7890"),
        ("none", "zh-cn", "zh-cn"),
    ],
)
def test_mask_styles(style: str, value: str, masked: str) -> None:
    assert mask(style, value) == masked


def test_hidden_style_shows_nothing() -> None:
    assert mask("hidden", "晚上联系") is None
