"""The guide's chapter titles in English, keyed by the exact strings of the catalogue's `guide:` fields.

The guide is Chinese; a reader of the report may not read it, and a machine without CJK fonts
draws its titles as empty boxes. report.html therefore shows the English title first and the
Chinese beside it (see `kubeproof.reports.html_text.chapter_html`). The translations are
kubeproof's own. `tests/offline/test_report_html.py` fails when a catalogue chapter has none.
"""

from __future__ import annotations

from collections.abc import Mapping

CHAPTER_TITLES_EN: Mapping[str, str] = {
    "一、环境准备": "1. Environment preparation",
    "二、部署etcd集群": "2. Deploy the etcd cluster",
    "二、部署etcd集群 (etcd-cert.sh)": "2. Deploy the etcd cluster (etcd-cert.sh)",
    "三、部署 docker 引擎(所有 node 节点)": "3. Deploy the docker engine (on every node)",
    "四、flannel 网络配置": "4. Configure the flannel network",
    "五、部署 master 组件 (k8s-cert.sh)": "5. Deploy the master components (k8s-cert.sh)",
    "五、部署 master 组件(master01 节点)": "5. Deploy the master components (on master01)",
    "六、部署 Worker Node 组件": "6. Deploy the worker node components",
    "六、8 K8S 单节点测试": "6.8 Kubernetes single-node test",
    "安全 (findings)": "Security (findings)",
}


def has_cjk(text: str) -> bool:
    """Does the text hold a CJK ideograph or CJK punctuation (what needs a CJK font to draw)?"""
    return any("\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef" for ch in text)


def english_title(guide: str) -> str:
    """The chapter's English title; "" when there is none (an untranslated chapter)."""
    return CHAPTER_TITLES_EN.get(guide.strip(), "" if has_cjk(guide) else guide)
