"""The fixed sentences every engine export is checked on (:mod:`semspace.encode.engine`), and the SmoothQuant
activation ranges are measured on (:mod:`semspace.encode.smoothquant`): written for semspace, so they ship with it.
"""

from __future__ import annotations

# Graded pairs for the task loss `auto` decides by (issue 28): 20 topics of 5 sentences each — a sentence, a close
# paraphrase, a loose one, the same topic with another claim, and an unrelated sentence of similar shape — so that
# within a topic the pairs span near-duplicates to unrelated, as an STS set's gold scores do (uniformly), and the
# cross-topic pairs add the unrelated end.
CALIBRATION_GROUPS: tuple[tuple[str, ...], ...] = (
    (
        "A man is playing a guitar.",
        "A man plays the guitar on stage.",
        "Someone is playing an acoustic guitar.",
        "A man is playing a piano.",
        "A man is tuning a violin in his kitchen.",
    ),
    (
        "A woman is slicing an onion.",
        "A woman is cutting an onion.",
        "Someone is chopping vegetables.",
        "A woman is peeling potatoes.",
        "A woman is washing the dishes.",
    ),
    (
        "Two dogs run across a snowy field.",
        "Two dogs are running through the snow.",
        "Dogs play outside in winter.",
        "A dog is sleeping on the couch.",
        "A horse gallops along the beach.",
    ),
    (
        "The plane is taking off.",
        "An airplane is departing.",
        "A jet leaves the runway.",
        "The jet landed at the airport.",
        "The train pulled into the station.",
    ),
    (
        "A cat sits on the mat.",
        "A cat is lying on a rug.",
        "A kitten rests on the carpet.",
        "A cat chases a mouse through the garden.",
        "A bird sits on the fence.",
    ),
    (
        "Stocks fell sharply after the central bank raised interest rates again on Tuesday.",
        "Share prices dropped after the bank increased rates.",
        "Markets slid when borrowing costs went up.",
        "The central bank kept interest rates unchanged.",
        "The company reported record profits this quarter.",
    ),
    (
        "How do I reset my password if I no longer have access to my email account?",
        "I forgot my password and cannot log in to my email.",
        "How can I recover my account without my old email?",
        "How do I change my email address in the settings?",
        "What is the best way to learn a new language?",
    ),
    (
        "The committee will meet next week to discuss the budget for the coming fiscal year.",
        "The committee will review next year's budget.",
        "Next week the board discusses spending plans.",
        "The meeting was cancelled because of the storm.",
        "The museum opens a new exhibition next month.",
    ),
    (
        "Protein folding is determined by the amino acid sequence and its interactions with the solvent.",
        "The sequence of amino acids determines how a protein folds.",
        "A protein's shape follows from its sequence.",
        "Misfolded proteins are linked to several neurodegenerative diseases.",
        "Photosynthesis turns light into chemical energy.",
    ),
    (
        "She didn't like the movie, but her friends thought it was the best film of the year.",
        "Her friends loved the film even though she did not.",
        "Opinions about the film differed among the friends.",
        "The movie was boring and far too long.",
        "The concert sold out within minutes.",
    ),
    ("Paris", "Paris is the capital of France.", "The French capital", "Berlin", "A small village in the mountains"),
    ("yes", "No.", "Sure, of course.", "Maybe later.", "The answer is not known."),
    (
        "Quantum entanglement links the states of two particles regardless of the distance between them.",
        "Entangled particles share a quantum state across any distance.",
        "Two particles can stay correlated far apart.",
        "Quantum computers use qubits instead of classical bits.",
        "Gravity keeps the planets in orbit around the Sun.",
    ),
    (
        "The children were laughing and playing in the park while their parents watched from a bench nearby.",
        "Kids played in the park while their parents sat on a bench.",
        "Families spent the afternoon in the park.",
        "The park was empty because of the rain.",
        "The children sat quietly in the classroom.",
    ),
    (
        "Mutations in the BRCA1 gene increase the risk of breast and ovarian cancer; screening is recommended for "
        "carriers, and several prophylactic options exist, each with its own trade-offs for the patient.",
        "Carriers of BRCA1 mutations face a higher risk of breast cancer.",
        "Genetic testing can reveal an inherited cancer risk.",
        "Regular exercise lowers the risk of heart disease.",
        "The hospital opened a new wing for children.",
    ),
    (
        "In 1969, Apollo 11 landed on the Moon. Neil Armstrong and Buzz Aldrin spent about two and a quarter hours "
        "outside the lunar module, collecting samples and deploying experiments, while Michael Collins orbited above "
        "in the command module. The mission fulfilled a national goal set by President Kennedy in 1961.",
        "Neil Armstrong was the first person to walk on the Moon.",
        "Astronauts landed on the Moon in 1969.",
        "The space station orbits the Earth every ninety minutes.",
        "Columbus crossed the Atlantic in 1492.",
    ),
    (
        "The recipe calls for two cups of flour and a pinch of salt.",
        "Use two cups of flour and some salt.",
        "The dough needs flour and salt.",
        "Bake the bread for forty minutes at high heat.",
        "The car needs new tires before winter.",
    ),
    (
        "The new phone has a larger screen and a longer battery life.",
        "The latest phone's display is bigger and its battery lasts longer.",
        "The phone was improved over last year's model.",
        "The phone's camera struggles in low light.",
        "The river flooded the town after days of rain.",
    ),
    (
        "Vaccines train the immune system to recognise a virus.",
        "A vaccine teaches the body to fight a virus.",
        "Immunisation protects people from infectious disease.",
        "Antibiotics do not work against viral infections.",
        "The football team won the championship.",
    ),
    (
        "The train to Berlin is delayed by thirty minutes.",
        "The Berlin train will arrive half an hour late.",
        "There are delays on the railway today.",
        "The train to Munich is on time.",
        "She bought fresh bread at the bakery.",
    ),
)


# The same construction in Chinese (6 topics: the bank and payment questions of ATEC/BQ/LCQMC's kind, everyday
# scenes, news), so a model that reads Chinese is held to its Chinese loss too (a multilingual model can keep English
# and lose Chinese: docs/results/engine_int8_zh.md).
CALIBRATION_GROUPS_ZH: tuple[tuple[str, ...], ...] = (
    (
        "一个男人正在弹吉他。",
        "一名男子在弹奏吉他。",
        "有人在演奏乐器。",
        "一个男人正在弹钢琴。",
        "一只猫在沙发上睡觉。",
    ),
    (
        "我的银行卡丢了，怎么办？",
        "银行卡丢失了应该怎么处理？",
        "卡不见了需要挂失吗？",
        "怎么申请一张新的信用卡？",
        "明天北京会下雨吗？",
    ),
    (
        "这家餐厅的菜味道很好，价格也不贵。",
        "这个饭店的菜又好吃又便宜。",
        "我很喜欢这家店。",
        "这家餐厅的服务太慢了。",
        "火车晚点了半个小时。",
    ),
    (
        "花呗的还款日可以推迟吗？",
        "花呗能不能延期还款？",
        "还款时间可以改吗？",
        "花呗的额度怎么提高？",
        "今天的足球比赛很精彩。",
    ),
    (
        "孩子们在公园里玩耍，父母坐在长椅上看着。",
        "父母在长椅上看着孩子们在公园里玩。",
        "一家人在公园度过了下午。",
        "公园因为下雨没有人。",
        "他在图书馆里看书。",
    ),
    (
        "央行宣布再次提高利率，股市大幅下跌。",
        "利率上调后股价明显下滑。",
        "加息让市场表现不佳。",
        "央行决定维持利率不变。",
        "这部电影获得了最佳影片奖。",
    ),
)
# The sentences every engine export is checked on (min cosine, and the traced example inputs): 40 of the English
# graded sentences, in a fixed order (the first of each of 16 topics, then others), so every export of one model is
# checked on the same inputs.
_CHECKED = (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75)
_CHECKED += (1, 2, 3, 6, 8, 11, 13, 16, 18, 21, 26, 28, 31, 36, 38, 41, 46, 48, 51, 56, 61, 66, 71, 76)
CALIBRATION: tuple[str, ...] = tuple([text for group in CALIBRATION_GROUPS for text in group][i] for i in _CHECKED)
# Every language the check reads, in order.
CALIBRATION_LANGUAGES: dict[str, tuple[tuple[str, ...], ...]] = {"en": CALIBRATION_GROUPS, "zh": CALIBRATION_GROUPS_ZH}


def calibration_texts() -> list[str]:
    """Every graded calibration sentence, language after language (the texts SmoothQuant measures ranges on)."""
    return [text for groups in CALIBRATION_LANGUAGES.values() for group in groups for text in group]


def calibration_pairs(
    groups: tuple[tuple[str, ...], ...] = CALIBRATION_GROUPS,
) -> tuple[list[str], list[tuple[int, int]]]:
    """(texts, pairs of indices into texts) of one language's `groups`: every pair within a topic (10 per topic)
    and, for each sentence, the sentence in the same place of the next and the second-next topic."""
    n, k = len(groups), len(groups[0])
    texts = [text for group in groups for text in group]
    within = [(g * k + a, g * k + b) for g in range(n) for a in range(k) for b in range(a + 1, k)]
    across = [(g * k + j, ((g + step) % n) * k + j) for step in (1, 2) for g in range(n) for j in range(k)]
    return texts, within + across


def designed_grades(groups: tuple[tuple[str, ...], ...]) -> tuple[list[tuple[int, int]], list[int]]:
    """(pairs, grades): each topic's first sentence with its paraphrase (4), loose paraphrase (3), same-topic claim
    (2), unrelated sentence (1) and the next topic's first sentence (0) — the order a model that reads the language
    puts their similarities in."""
    n, k = len(groups), len(groups[0])
    pairs = [(g * k, g * k + j) for g in range(n) for j in range(1, k)] + [(g * k, ((g + 1) % n) * k) for g in range(n)]
    grades = [k - j for g in range(n) for j in range(1, k)] + [0] * n
    return pairs, grades
